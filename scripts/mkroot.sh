#!/usr/bin/env bash
# Make (once) and cache the test bed's Debian unstable root: the CPython
# releases Debian builds that this machine has no other way to get (3.14,
# 3.15), with their -dbg packages (separate debug files by build-id and the
# Py_DEBUG interpreters).  docs/test-bed.md explains how the tests use it.
#
#   scripts/mkroot.sh [--rebuild]     prints the root's path on stdout
#   scripts/mkroot.sh --check         exit 0 iff the cached root is current
#
# PYX_ROOT_DIR overrides the path (default /var/cache/pyxray/roots/sid);
# PYX_ROOT_MIRROR the archive (default: the Debian archive of this machine's
# apt sources).  The root is reused while its stamp (written last) holds the
# hash of the package list below; a changed list rebuilds it.  Concurrent
# runs wait on a lock.  On failure the reason is left in ROOT.failed (the
# tests turn it into a named skip) and the exit code is non-zero.
#
# Every run also writes the build table (interpreter, version, package,
# build-ids, debug files) into the root (pyxray-builds.json and .md) and into
# docs/test-bed-builds.md: which patch release the tests ran on is recorded,
# never assumed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$PATH:/usr/sbin:/sbin"

# The CPython versions of the bed.  test/CMakeLists.txt reads this line to
# register the tests even when the root could not be made.
versions="3.14 3.15"
suite=sid
variant=minbase
format=1	# bump when the root's layout below changes

root=${PYX_ROOT_DIR:-/var/cache/pyxray/roots/$suite}
table_repo="$top/docs/test-bed-builds.md"
rebuild=0
check=0
case "${1:-}" in
--rebuild) rebuild=1 ;;
--check) check=1 ;;
"") ;;
*) echo "usage: scripts/mkroot.sh [--rebuild|--check]" >&2; exit 2 ;;
esac

include=()
for v in $versions; do
	include+=("python$v" "python$v-dbg" "libpython$v")
done
spec="format=$format suite=$suite variant=$variant include=${include[*]}"
hash=$(printf '%s\n' "$spec" | sha256sum | cut -c1-16)
stamp="$root/.pyxray-stamp"

say() { echo "mkroot: $*" >&2; }

fail() {
	say "FAILED: $*"
	mkdir -p "$(dirname "$root")"
	printf '%s\n' "$*" > "$root.failed"
	exit 1
}

# The first Debian archive (not -security) named in this machine's apt
# sources, one-line or deb822 format.
mirror_of_machine() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {
			if ($(i+1) !~ /security/) { print $i; exit } ; break } }' "$f"
	done | head -n1
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		# One stanza per paragraph: its URIs unless all its suites are -security.
		awk 'BEGIN { RS = ""; FS = "\n" }
		     { uri = ""; sec = 0
		       for (i = 1; i <= NF; i++) {
		         if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); uri = a[2] }
		         if ($i ~ /^Suites:/ && $i ~ /security/) sec = 1 }
		       if (uri != "" && !sec) { print uri; exit } }' "$f"
	done | head -n1
}

write_tables() {
	# $1: the root.  Facts come from the root itself: dpkg's database,
	# the ELF notes, the interpreters run in a chroot.
	/usr/bin/python3 - "$1" "$table_repo" "$suite" "$versions" <<'EOF'
import json, os, re, subprocess, sys

root, repo_table, suite, versions = sys.argv[1:5]

def build_id(path):
    out = subprocess.run(["readelf", "-n", path], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, universal_newlines=True)
    m = re.search(r"Build ID:\s*([0-9a-f]+)", out.stdout)
    return m.group(1) if m else None

def owner(path):
    """(package, version) that installed path in the root, or (None, None)."""
    rel = "/" + os.path.relpath(path, root)
    out = subprocess.run(["dpkg-query", "--admindir=%s/var/lib/dpkg" % root,
                          "-S", rel], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, universal_newlines=True)
    if out.returncode != 0 or ":" not in out.stdout:
        return None, None
    pkg = out.stdout.split(":")[0].split(",")[0].strip()
    ver = subprocess.run(["dpkg-query", "--admindir=%s/var/lib/dpkg" % root,
                          "-W", "-f=${Version}", pkg], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, universal_newlines=True)
    return pkg, ver.stdout.strip() or None

def embedded_dwarf(path):
    out = subprocess.run(["readelf", "-S", "-W", path], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, universal_newlines=True)
    return re.search(r"\s\.debug_info\s", out.stdout) is not None

def debug_file(bid):
    if not bid:
        return None
    p = "%s/usr/lib/debug/.build-id/%s/%s.debug" % (root, bid[:2], bid[2:])
    return p if os.path.exists(p) else None

rows = []
for v in versions.split():
    for name in ("python" + v, "python%sd" % v):
        exe = os.path.join(root, "usr/bin", name)
        if not os.path.isfile(exe):
            continue
        run = subprocess.run(
            ["/usr/sbin/chroot", root, "/usr/bin/" + name, "-c",
             "import platform,sys;print(platform.python_version(),"
             "hasattr(sys,'gettotalrefcount'))"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            universal_newlines=True, env={"PATH": "/usr/bin:/bin"})
        if run.returncode != 0:
            sys.exit("%s does not run in the root: %s" % (name, run.stderr))
        pyver, pydebug = run.stdout.split()
        pkg, pkgver = owner(exe)
        bid = build_id(exe)
        dbg = debug_file(bid)
        dpkg, dver = owner(dbg) if dbg else (None, None)
        rows.append({
            "name": name, "kind": "interpreter", "path": "/usr/bin/" + name,
            "python_version": pyver, "py_debug": pydebug == "True",
            "package": pkg, "package_version": pkgver, "build_id": bid,
            "debug_file": "/" + os.path.relpath(dbg, root) if dbg else None,
            "debug_build_id": build_id(dbg) if dbg else None,
            "debug_package": dpkg, "debug_package_version": dver,
            "embedded_dwarf": embedded_dwarf(exe)})
    libdir = os.path.join(root, "usr/lib/x86_64-linux-gnu")
    for lib in sorted(os.listdir(libdir)):
        if not re.match(r"libpython%s\.so\.\d+\.\d+$" % re.escape(v), lib):
            continue
        path = os.path.join(libdir, lib)
        pkg, pkgver = owner(path)
        bid = build_id(path)
        dbg = debug_file(bid)
        dpkg, dver = owner(dbg) if dbg else (None, None)
        rows.append({
            "name": lib, "kind": "library",
            "path": "/usr/lib/x86_64-linux-gnu/" + lib,
            "python_version": None, "py_debug": False,
            "package": pkg, "package_version": pkgver, "build_id": bid,
            "debug_file": "/" + os.path.relpath(dbg, root) if dbg else None,
            "debug_build_id": build_id(dbg) if dbg else None,
            "debug_package": dpkg, "debug_package_version": dver,
            "embedded_dwarf": embedded_dwarf(path)})
for r in rows:
    if r["kind"] == "library":  # the version of its interpreter
        v = re.match(r"libpython(\d+\.\d+)", r["name"]).group(1)
        r["python_version"] = next((x["python_version"] for x in rows
                                    if x["name"] == "python" + v), None)

doc = {"suite": suite, "rows": rows}
with open(os.path.join(root, "pyxray-builds.json.tmp"), "w") as f:
    json.dump(doc, f, indent=1, sort_keys=True)
    f.write("\n")
os.rename(os.path.join(root, "pyxray-builds.json.tmp"),
          os.path.join(root, "pyxray-builds.json"))

lines = [
    "# Test bed builds",
    "",
    "Generated by `scripts/mkroot.sh` from the Debian %s root the tests last ran on"
    % suite,
    "(docs/test-bed.md).  Do not edit: the script rewrites it on every run.",
    "",
    "| file | Python | package | build-id | debug file (package) |",
    "| --- | --- | --- | --- | --- |",
]
for r in rows:
    pyv = r["python_version"] or "?"
    if r["py_debug"]:
        pyv += " (Py_DEBUG)"
    dbg = "none (DWARF embedded)" if r["embedded_dwarf"] else "none"
    if r["debug_file"]:
        dbg = "`%s` (%s %s)" % (r["debug_file"], r["debug_package"],
                                r["debug_package_version"])
        if r["debug_build_id"] != r["build_id"]:
            dbg += " BUILD-ID MISMATCH"
    lines.append("| `%s` | %s | %s %s | `%s` | %s |" % (
        r["path"], pyv, r["package"], r["package_version"], r["build_id"], dbg))
text = "\n".join(lines) + "\n"
with open(os.path.join(root, "pyxray-builds.md"), "w") as f:
    f.write(text)
old = None
if os.path.exists(repo_table):
    with open(repo_table) as f:
        old = f.read()
if old != text:
    with open(repo_table + ".tmp", "w") as f:
        f.write(text)
    os.rename(repo_table + ".tmp", repo_table)
    print("mkroot: wrote %s" % repo_table, file=sys.stderr)
EOF
}

if [ "$check" = 1 ]; then
	[ -f "$stamp" ] && grep -qx "hash=$hash" "$stamp"
	exit
fi

mkdir -p "$(dirname "$root")"
exec 9> "$root.lock"
flock 9

if [ "$rebuild" = 0 ] && [ -f "$stamp" ] && grep -qx "hash=$hash" "$stamp"; then
	write_tables "$root" || fail "the cached root $root is damaged (rerun with --rebuild)"
	rm -f "$root.failed"
	echo "$root"
	exit 0
fi

command -v debootstrap >/dev/null 2>&1 ||
	fail "debootstrap is not installed (scripts/deps.sh installs it)"
[ "$(id -u)" = 0 ] || fail "debootstrap needs root"
mirror=${PYX_ROOT_MIRROR:-$(mirror_of_machine)}
[ -n "$mirror" ] || fail "no Debian archive in /etc/apt/sources.list(.d) (set PYX_ROOT_MIRROR)"

new="$root.new"
log="$root.log"
# --one-file-system: never follow a mount some leftover process made there.
rm -rf --one-file-system "$new"
say "making $root: debootstrap --variant=$variant $suite from $mirror (log: $log)"
t0=$(date +%s)
if ! debootstrap --variant="$variant" --include="$(IFS=,; echo "${include[*]}")" \
	"$suite" "$new" "$mirror" > "$log" 2>&1; then
	why=$(grep -E '^(E|W): ' "$log" | tail -n1)
	rm -rf --one-file-system "$new"
	fail "debootstrap $suite from $mirror failed: ${why:-see $log}"
fi
# Mount points for the container mode (test/integration/pyxtest.py).
mkdir -p "$new/pyxray-fixtures" "$new/proc" "$new/dev" "$new/tmp"
# Neither the apt caches nor the docs are needed: keep the cache small.
rm -rf "$new/var/cache/apt/archives/"*.deb "$new/usr/share/doc" "$new/usr/share/man"
write_tables "$new" || { rm -rf --one-file-system "$new"; fail "the new root's interpreters do not run"; }
printf 'hash=%s\n%s\nmirror=%s\n' "$hash" "$spec" "$mirror" > "$new/.pyxray-stamp"
if [ -e "$root" ]; then
	rm -rf --one-file-system "$root.old"
	mv "$root" "$root.old"
fi
mv "$new" "$root"
rm -rf --one-file-system "$root.old" "$root.failed"
say "made $root in $(( $(date +%s) - t0 )) s ($(du -sm "$root" | cut -f1) MiB)"
echo "$root"
