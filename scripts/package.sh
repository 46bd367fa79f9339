#!/usr/bin/env bash
# Make pyxray's release files from the tree (docs/packaging.md):
#
#   scripts/package.sh [--deb] [--portable] [--no-lintian]
#
#   --deb       dist/pyxray_VERSION_amd64.deb: built with Debian's hardening
#               flags, stripped, its Depends from the libraries it links
#               (dpkg-shlibdeps), checked by lintian (errors fail the build)
#   --portable  dist/pyxray-VERSION-x86_64-linux: scripts/portable.sh
#   (neither: both)
#
# VERSION is scripts/version.sh's (--deb: Debian's spelling).  PYX_DIST_DIR
# overrides dist/, PYX_PKG_BUILD_DIR the build directory (default
# build-pkg-deb), PYX_MAINTAINER the package's Maintainer.  It prints the
# files it made, one a line, on stdout.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dist=${PYX_DIST_DIR:-"$top/dist"}
say() { echo "package: $*" >&2; }
die() { say "FAILED: $*"; exit 1; }

deb=0 portable=0 lintian=1
for a in "$@"; do
	case "$a" in
	--deb) deb=1 ;;
	--portable) portable=1 ;;
	--no-lintian) lintian=0 ;;
	*) echo "usage: scripts/package.sh [--deb] [--portable] [--no-lintian]" >&2; exit 2 ;;
	esac
done
[ "$deb" = 1 ] || [ "$portable" = 1 ] || { deb=1; portable=1; }
mkdir -p "$dist"

make_deb() {
	local version build stage work debv arch deps size out
	for t in dpkg-deb dpkg-shlibdeps dpkg-buildflags cmake gzip; do
		command -v "$t" > /dev/null 2>&1 || die "$t not found (scripts/deps.sh installs it)"
	done
	debv=$("$top/scripts/version.sh" --deb)
	arch=$(dpkg --print-architecture)
	[ "$arch" = amd64 ] || die "pyxray reads x86_64 processes: build on amd64 (not $arch)"
	build=${PYX_PKG_BUILD_DIR:-"$top/build-pkg-deb"}
	work=$(mktemp -d "${TMPDIR:-/tmp}/pyxray-deb.XXXXXX")
	trap 'rm -rf "$work"' RETURN
	stage=$work/root

	# Debian's flags (hardening: fortify, stack protector, relro, now,
	# PIE); -ffile-prefix-map keeps the build path out of the binary.
	# Warnings do not stop it (PYX_PKG_WERROR=ON makes them): -O2 with
	# fortify warns where the -Werror gate of scripts/test.sh does not.
	export DEB_BUILD_MAINT_OPTIONS=hardening=+all
	local cflags cppflags ldflags
	cflags=$(cd "$top" && dpkg-buildflags --get CFLAGS)
	cppflags=$(cd "$top" && dpkg-buildflags --get CPPFLAGS)
	ldflags=$(cd "$top" && dpkg-buildflags --get LDFLAGS)
	say "building $debv in $build"
	cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=None -DCMAKE_INSTALL_PREFIX=/usr \
		-DCMAKE_C_FLAGS="$cflags $cppflags" -DCMAKE_EXE_LINKER_FLAGS="$ldflags" \
		-DPYX_TESTS=OFF -DPYX_TEST_HOOKS=OFF -DPYX_WERROR="${PYX_PKG_WERROR:-OFF}" \
		-DPYX_MAN=ON > /dev/null
	cmake --build "$build" -j"$(nproc)" > /dev/null || die "the build failed (cmake --build $build)"
	DESTDIR=$stage cmake --install "$build" > /dev/null

	# Debian's layout: a stripped binary; man pages, docs and the Debian
	# changelog compressed (gzip -n: no name, no date); a copyright file.
	strip --remove-section=.comment --remove-section=.note --strip-unneeded \
		"$stage/usr/bin/pyxray"
	gzip -9n "$stage"/usr/share/man/man1/*.1
	local doc=$stage/usr/share/doc/pyxray
	gzip -9n "$doc/CHANGELOG.md" "$doc/README.md"
	cat > "$work/changelog" <<-EOF
	pyxray ($debv) unstable; urgency=medium

	  * Built from the pyxray tree.  What changed: CHANGELOG.md.gz
	    in /usr/share/doc/pyxray.

	 -- ${PYX_MAINTAINER:-pyxray maintainers <pyxray@example.com>}  $(date -R -u ${SOURCE_DATE_EPOCH:+-d @$SOURCE_DATE_EPOCH})
	EOF
	gzip -9nc "$work/changelog" > "$doc/changelog.gz"
	cat > "$doc/copyright" <<-EOF
	Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
	Upstream-Name: pyxray
	Comment: the pyxray tree names no license yet; until it does, the
	 authors keep every right.  Only the text of this project is in the
	 package: elfutils, zlib and the compression libraries are the system's.

	Files: *
	Copyright: $(date -u +%Y ${SOURCE_DATE_EPOCH:+-d @$SOURCE_DATE_EPOCH}) the pyxray authors
	License: none
	 No license has been chosen yet: all rights reserved.
	EOF
	find "$stage" -type d -exec chmod 0755 {} +
	find "$stage" -type f -exec chmod 0644 {} +
	chmod 0755 "$stage/usr/bin/pyxray"

	# Depends: the packages of the libraries the binary links, at the
	# versions their symbols need (dpkg-shlibdeps reads a debian/control).
	mkdir -p "$work/debian"
	printf 'Source: pyxray\n\nPackage: pyxray\nArchitecture: amd64\n' > "$work/debian/control"
	deps=$(cd "$work" && dpkg-shlibdeps -O "$stage/usr/bin/pyxray" 2> "$work/shlibdeps.err") ||
		die "dpkg-shlibdeps: $(cat "$work/shlibdeps.err")"
	deps=${deps#shlibs:Depends=}
	[ -n "$deps" ] || die "dpkg-shlibdeps found no dependency"

	size=$(du -sk --apparent-size "$stage" | cut -f1)
	mkdir -p "$stage/DEBIAN"
	cat > "$stage/DEBIAN/control" <<-EOF
	Package: pyxray
	Version: $debv
	Architecture: amd64
	Maintainer: ${PYX_MAINTAINER:-pyxray maintainers <pyxray@example.com>}
	Installed-Size: $size
	Depends: $deps
	Section: devel
	Priority: optional
	Description: debugger for live CPython processes, from the outside
	 pyxray attaches to a running CPython (3.8 to 3.15) process with ptrace,
	 finds the interpreter through ELF and DWARF, copies what it needs and
	 resumes it, never running code in the target:
	  - stacks: every thread's Python stack, with native frames if asked;
	  - census: objects by type with counts and sizes, growth over time;
	  - refs: retention paths that keep objects alive;
	  - info: which Python a process runs and how pyxray reads it.
	 It reads stripped distribution builds through their debug files or the
	 interpreter's own debug offsets, and targets in containers.
	EOF
	(cd "$stage" && find usr -type f -print0 | sort -z | xargs -0 md5sum) > "$stage/DEBIAN/md5sums"
	chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"

	out="$dist/pyxray_${debv}_amd64.deb"
	rm -f "$dist"/pyxray_*_amd64.deb
	dpkg-deb --root-owner-group -Zxz --build "$stage" "$out" > /dev/null ||
		die "dpkg-deb --build failed"
	say "made $out (Depends: $deps)"

	if [ "$lintian" = 1 ]; then
		command -v lintian > /dev/null 2>&1 ||
			die "lintian not found (scripts/deps.sh installs it; --no-lintian skips it)"
		# Errors fail; warnings are shown.  A package built from a
		# development tree has no upstream changelog entry of its own.
		local lout rc=0
		lout=$(lintian --fail-on error --suppress-tags \
			no-manual-page,initial-upload-closes-no-bugs "$out" 2>&1) || rc=$?
		[ -z "$lout" ] || printf '%s\n' "$lout" >&2
		[ "$rc" = 0 ] || die "lintian reports errors in $out"
		say "lintian: no error"
	fi
	echo "$out"
}

if [ "$deb" = 1 ]; then
	make_deb
fi
if [ "$portable" = 1 ]; then
	"$top/scripts/portable.sh"
fi
