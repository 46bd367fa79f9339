#!/usr/bin/env bash
# The portable binary dist/pyxray-VERSION-x86_64-linux (docs/packaging.md):
# elfutils (libdw, libelf) and the compression libraries (zlib, bzip2, xz,
# zstd, lz4) linked in statically, only glibc dynamic, and no glibc symbol
# version newer than 2.28, so that it runs on Debian 10+, Ubuntu 20.04+ and
# RHEL 8+.  It is built in an old Debian root made with debootstrap and cached
# under /var/cache/pyxray/roots/ (like scripts/mkroot.sh's test root):
# Debian 10 (buster, glibc 2.28) from archive.debian.org, or, where that
# archive cannot be reached, Debian 11 (bullseye, glibc 2.31), whose symbols
# pyxray uses are all 2.28 or older (checked below, on every build).
#
#   scripts/portable.sh               build; prints the binary's path
#   scripts/portable.sh --root        make (or reuse) the build root; prints it
#   scripts/portable.sh --fresh-root  make (or reuse) a fresh minbase root of
#                                     this machine's Debian release, where the
#                                     tests install the Debian package
#   scripts/portable.sh --check FILE  check a binary's dynamic dependencies
#                                     and glibc symbol versions
#
# PYX_PORTABLE_SUITE forces a suite (buster, bullseye), PYX_PORTABLE_MIRROR
# its archive, PYX_DIST_DIR the output directory.  On failure to make the
# root, the reason is left in ROOT.failed and the exit code is 3 (the test
# suite turns it into a named skip); a build or check failure exits 1.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$PATH:/usr/sbin:/sbin"
dist=${PYX_DIST_DIR:-"$top/dist"}
cache=${PYX_PORTABLE_CACHE:-/var/cache/pyxray/roots}
GLIBC_MAX=2.28
# The only libraries the binary may ask the loader for: glibc's.
ALLOWED_NEEDED="libc.so.6 libm.so.6 libpthread.so.0 libdl.so.2 librt.so.1 ld-linux-x86-64.so.2"
build_pkgs="gcc libc6-dev make cmake pkg-config binutils zlib1g-dev libbz2-dev liblzma-dev
libzstd-dev liblz4-dev flex bison m4 gawk"
# elfutils itself is built from source in the root: pyxray needs 0.186+
# (dwfl_frame_reg), buster has 0.176, bullseye 0.183.  Debian's copy of the
# release tarball, checked against the hash below.
ELFUTILS=0.188
ELFUTILS_URL=http://deb.debian.org/debian/pool/main/e/elfutils/elfutils_$ELFUTILS.orig.tar.bz2
ELFUTILS_SHA256=fb8b0e8d0802005b9a309c60c1d8de32dd2951b56f0c3a3cb56d21ce01595dff
format=2	# bump when the root's layout changes

say() { echo "portable: $*" >&2; }

# check FILE: the binary needs only glibc, and no symbol newer than 2.28.
check() {
	local f=$1 needed bad="" v newest
	needed=$(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
	for n in $needed; do
		case " $ALLOWED_NEEDED " in
		*" $n "*) ;;
		*) bad="$bad $n" ;;
		esac
	done
	if [ -n "$bad" ]; then
		say "FAILED: $f needs libraries other than glibc's:$bad"
		return 1
	fi
	newest=$(readelf -W --dyn-syms "$f" | grep -o 'GLIBC_[0-9][0-9.]*' |
		sed 's/GLIBC_//' | sort -t. -k1,1n -k2,2n -k3,3n | tail -n1)
	v=$(printf '%s\n%s\n' "$newest" "$GLIBC_MAX" | sort -t. -k1,1n -k2,2n -k3,3n | tail -n1)
	if [ "$v" != "$GLIBC_MAX" ]; then
		say "FAILED: $f uses glibc symbols of version $newest (> $GLIBC_MAX):"
		readelf -W --dyn-syms "$f" | grep -E "GLIBC_$newest( |$)" | awk '{print "  " $8}' >&2
		return 1
	fi
	say "$f: needs$(printf ' %s' $needed); newest glibc symbol version $newest (<= $GLIBC_MAX)"
}

# The suite and archive: buster where its archive answers, else bullseye.
pick_suite() {
	if [ -n "${PYX_PORTABLE_SUITE:-}" ]; then
		suite=$PYX_PORTABLE_SUITE
		case "$suite" in
		buster) mirror=${PYX_PORTABLE_MIRROR:-http://archive.debian.org/debian} ;;
		*) mirror=${PYX_PORTABLE_MIRROR:-http://deb.debian.org/debian} ;;
		esac
		return
	fi
	if [ -n "${PYX_PORTABLE_MIRROR:-}" ]; then
		suite=buster mirror=$PYX_PORTABLE_MIRROR
		return
	fi
	if command -v wget > /dev/null 2>&1 &&
		wget -q -T 15 -t 1 -O /dev/null http://archive.debian.org/debian/dists/buster/Release; then
		suite=buster mirror=http://archive.debian.org/debian
	else
		suite=bullseye mirror=http://deb.debian.org/debian
	fi
}

# Make (once) the cached build root; its path in $root.
make_root() {
	pick_suite
	make_a_root "$cache/build-$suite" "$suite" "$mirror" "$build_pkgs"
}

# The throwaway root the Debian package is installed into (tests): a fresh
# minbase of this machine's release, where the package was built.
make_fresh_root() {
	local codename
	codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	[ -n "$codename" ] || { say "FAILED: no VERSION_CODENAME in /etc/os-release"; exit 3; }
	make_a_root "$cache/fresh-$codename" "$codename" \
		"${PYX_PORTABLE_MIRROR:-http://deb.debian.org/debian}" ""
}

# make_a_root DIR SUITE MIRROR PACKAGES: debootstrap once, reuse while the
# stamp (written last) holds the hash of what was asked; $root is DIR.
make_a_root() {
	root=$1 suite=$2 mirror=$3
	local include=$4 spec hash stamp new log
	spec="format=$format suite=$suite include=$(echo $include)"
	hash=$(printf '%s\n' "$spec" | sha256sum | cut -c1-16)
	stamp=$root/.pyxray-stamp
	fail() {
		say "FAILED: $*"
		printf '%s\n' "$*" > "$root.failed"
		exit 3
	}
	mkdir -p "$cache"
	exec 8> "$root.lock"
	flock 8
	if [ -f "$stamp" ] && grep -qx "hash=$hash" "$stamp"; then
		rm -f "$root.failed"
		return
	fi
	command -v debootstrap > /dev/null 2>&1 ||
		fail "debootstrap is not installed (scripts/deps.sh installs it)"
	[ "$(id -u)" = 0 ] || fail "debootstrap needs root"
	new=$root.new
	log=$root.log
	rm -rf --one-file-system "$new"
	say "making $root: debootstrap --variant=minbase $suite from $mirror (log: $log)"
	local t0 why opts=()
	t0=$(date +%s)
	# buster's key is in the removed-keys ring of newer keyrings.
	[ "$suite" != buster ] || [ ! -f /usr/share/keyrings/debian-archive-removed-keys.gpg ] ||
		opts=(--keyring=/usr/share/keyrings/debian-archive-removed-keys.gpg)
	[ -z "$include" ] || opts+=(--include="$(echo $include | tr ' ' ,)")
	if ! debootstrap --variant=minbase "${opts[@]}" "$suite" "$new" "$mirror" > "$log" 2>&1; then
		why=$(grep -E '^(E|W): ' "$log" | tail -n1)
		rm -rf --one-file-system "$new"
		fail "debootstrap $suite from $mirror failed: ${why:-see $log}"
	fi
	rm -rf "$new/var/cache/apt/archives/"*.deb "$new/usr/share/doc" "$new/usr/share/man"
	mkdir -p "$new/build"
	printf 'hash=%s\n%s\nmirror=%s\n' "$hash" "$spec" "$mirror" > "$new/.pyxray-stamp"
	rm -rf --one-file-system "$root"
	mv "$new" "$root"
	rm -f "$root.failed"
	say "made $root in $(( $(date +%s) - t0 )) s ($(du -sm "$root" | cut -f1) MiB)"
}

# elfutils' static libraries in the root, under /opt/elfutils (once).
build_elfutils() {
	local tarball=$cache/elfutils_$ELFUTILS.orig.tar.bz2 done=$root/opt/elfutils/.pyxray-$ELFUTILS-2
	[ -f "$done" ] && return
	if ! echo "$ELFUTILS_SHA256  $tarball" | sha256sum -c --quiet > /dev/null 2>&1; then
		say "fetching $ELFUTILS_URL"
		wget -q -T 60 -O "$tarball.tmp" "$ELFUTILS_URL" || {
			rm -f "$tarball.tmp"
			printf 'cannot fetch %s\n' "$ELFUTILS_URL" > "$root.failed"
			say "FAILED: cannot fetch $ELFUTILS_URL"
			exit 3
		}
		echo "$ELFUTILS_SHA256  $tarball.tmp" | sha256sum -c --quiet ||
			{ say "FAILED: $ELFUTILS_URL: wrong sha256"; exit 1; }
		mv "$tarball.tmp" "$tarball"
	fi
	rm -rf --one-file-system "$root/opt/elfutils"
	# An earlier build of the same release is reused (make is incremental).
	if [ ! -f "$root/build/elfutils/.pyxray-$ELFUTILS" ]; then
		rm -rf --one-file-system "$root/build/elfutils"
		mkdir -p "$root/build/elfutils"
		tar -C "$root/build/elfutils" --strip-components=1 -xjf "$tarball"
		touch "$root/build/elfutils/.pyxray-$ELFUTILS"
	fi
	say "building elfutils $ELFUTILS (static) in $root"
	local t0
	t0=$(date +%s)
	# Only the libraries: libelf, libdw (with libdwfl, libebl, the
	# backends, libcpu in it); no debuginfod client (no network code).
	chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/build LC_ALL=C /bin/sh -ec "
		cd /build/elfutils
		[ -f config.status ] || ./configure --prefix=/opt/elfutils --disable-debuginfod \
			--disable-libdebuginfod --disable-nls --disable-demangler \
			CFLAGS='-O2 -g0 -fstack-protector-strong'
		for d in lib libelf libebl libdwelf libdwfl libcpu backends libdw; do
			make -C \$d -j$(nproc)
		done
		make -C libelf install
		make -C libdw install
		make -C libdwfl install
		make -C libdwelf install
		make install-pkgincludeHEADERS
		make -C config install-pkgconfigDATA
	" > "$root/build/elfutils.log" 2>&1 || {
		tail -n 30 "$root/build/elfutils.log" >&2
		say "FAILED: elfutils' build (log: $root/build/elfutils.log)"
		exit 1
	}
	touch "$done"
	say "built elfutils $ELFUTILS in $(( $(date +%s) - t0 )) s"
}

build() {
	local version src out b
	version=$("$top/scripts/version.sh")
	make_root
	build_elfutils
	# The tree as it is (tracked files and new ones git does not ignore),
	# with its version written down: the root has no .git.
	src=$root/build/src
	rm -rf --one-file-system "$src"
	mkdir -p "$src"
	# (A file deleted but still tracked is skipped.)
	(cd "$top" && git ls-files -z --cached --others --exclude-standard |
		tar --null -T - --ignore-failed-read -cf - 2> /dev/null) |
		tar -C "$src" -xf -
	printf '%s\n' "$version" > "$src/VERSION"
	say "building $version in $root ($(chroot "$root" /usr/bin/gcc -dumpversion 2> /dev/null || echo gcc), glibc $(chroot "$root" /usr/bin/ldd --version | sed -n '1s/.* //p'))"
	b=/build/out
	# glibc before 2.32 has no SYS_openat2 (lib/target/files.c calls it,
	# and falls back when the kernel lacks it): the kernel's number.
	local extra=""
	grep -qs 'SYS_openat2' "$root/usr/include/x86_64-linux-gnu/bits/syscall.h" ||
		extra="-DSYS_openat2=__NR_openat2"
	# sigabbrev_np (GLIBC_2.32) and gettid (GLIBC_2.30) are too new for
	# the binary: where the tree calls them, a table of the signals' names
	# and the system call, forced in ahead of every file (the tree should
	# not need them: see docs/packaging.md).
	if grep -rqsE 'sigabbrev_np|gettid\(' "$src/cmd" "$src/lib"; then
		cat > "$src/pyx_portable_compat.h" <<-'EOF'
		/* scripts/portable.sh: glibc before 2.32 has no sigabbrev_np. */
		#include <signal.h>
		#include <string.h>
		static inline const char *pyx_portable_sigabbrev(int sig)
		{
			static const char *const names[] = {
				[SIGHUP] = "HUP", [SIGINT] = "INT", [SIGQUIT] = "QUIT",
				[SIGILL] = "ILL", [SIGTRAP] = "TRAP", [SIGABRT] = "ABRT",
				[SIGBUS] = "BUS", [SIGFPE] = "FPE", [SIGKILL] = "KILL",
				[SIGUSR1] = "USR1", [SIGSEGV] = "SEGV", [SIGUSR2] = "USR2",
				[SIGPIPE] = "PIPE", [SIGALRM] = "ALRM", [SIGTERM] = "TERM",
				[SIGSTKFLT] = "STKFLT", [SIGCHLD] = "CHLD", [SIGCONT] = "CONT",
				[SIGSTOP] = "STOP", [SIGTSTP] = "TSTP", [SIGTTIN] = "TTIN",
				[SIGTTOU] = "TTOU", [SIGURG] = "URG", [SIGXCPU] = "XCPU",
				[SIGXFSZ] = "XFSZ", [SIGVTALRM] = "VTALRM", [SIGPROF] = "PROF",
				[SIGWINCH] = "WINCH", [SIGIO] = "IO", [SIGPWR] = "PWR",
				[SIGSYS] = "SYS",
			};
			if (sig > 0 && sig < (int)(sizeof(names) / sizeof(names[0])))
				return names[sig];
			return NULL;
		}
		#define sigabbrev_np pyx_portable_sigabbrev
		/* gettid is GLIBC_2.30: the system call itself (186 on x86_64;
		 * no <unistd.h> here, whose names the tree may use). */
		static inline int pyx_portable_gettid(void)
		{
			extern long syscall(long, ...);
			return (int)syscall(186);
		}
		#define gettid pyx_portable_gettid
		EOF
		extra="$extra -include /build/src/pyx_portable_compat.h"
	fi
	rm -rf --one-file-system "$root$b"
	# No /proc in the root: nothing the build runs needs it.  No -Werror:
	# the root's older gcc warns where the host's does not (designated
	# initializers); the -Werror gate is the host's build (scripts/test.sh).
	chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/build LC_ALL=C \
		PKG_CONFIG_PATH=/opt/elfutils/lib/pkgconfig ${SOURCE_DATE_EPOCH:+SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH} /bin/sh -ec "
		cmake -S /build/src -B $b -DCMAKE_BUILD_TYPE=Release -DPYX_STATIC_DEPS=ON \
			-DPYX_TESTS=OFF -DPYX_TEST_HOOKS=OFF -DPYX_WERROR=OFF -DPYX_MAN=OFF \
			-DCMAKE_C_FLAGS='-fstack-protector-strong -D_FORTIFY_SOURCE=2 $extra' \
			-DCMAKE_EXE_LINKER_FLAGS='-Wl,-z,relro -Wl,-z,now' > /dev/null
		cmake --build $b -j$(nproc) > /dev/null" > "$root/build/build.log" 2>&1 || {
		tail -n 30 "$root/build/build.log" >&2
		say "FAILED: the build in $root (log: $root/build/build.log)"
		exit 1
	}
	mkdir -p "$dist"
	out=$dist/pyxray-$version-x86_64-linux
	rm -f "$dist"/pyxray-*-x86_64-linux
	cp "$root$b/pyxray" "$out"
	strip --strip-debug "$out"
	chmod 0755 "$out"
	check "$out"
	echo "$out"
}

case "${1:-}" in
"") build ;;
--root) make_root; echo "$root" ;;
--fresh-root) make_fresh_root; echo "$root" ;;
--check) [ $# -eq 2 ] || { echo "usage: scripts/portable.sh --check FILE" >&2; exit 2; }; check "$2" ;;
*) echo "usage: scripts/portable.sh [--root | --fresh-root | --check FILE]" >&2; exit 2 ;;
esac
