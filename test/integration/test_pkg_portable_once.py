"""The portable binary dist/pyxray-VERSION-x86_64-linux (issue 16).

  test_pkg_portable_once.py --pyxray BIN --python PY   exit 0/1/77

The binary is scripts/portable.sh's (scripts/test.sh builds it before the
tests and names it in PYX_PORTABLE_BIN; else the newest dist/pyxray-*-
x86_64-linux of the tree).  Without one the test skips, naming why
(portable.sh's reason in ROOT.failed, e.g. no network for debootstrap).

Parts:
  * its dynamic section: NEEDED only glibc's libraries (libc, libm,
    libpthread, libdl, librt, the loader), no RPATH/RUNPATH; its newest
    GLIBC_ symbol version is 2.28 or older; no elfutils or compression
    library symbol is imported (they are linked in);
  * --version names the CPython versions, --help its commands;
  * on this machine: stacks --json of a fixture (a Python with DWARF)
    matches the fixture's in-process truth;
  * from inside another root: the test bed's Debian unstable root
    (scripts/mkroot.sh), chrooted with the host's /proc, against a fixture
    of that root's python3.14 (container mode): the binary runs on the
    root's glibc, not the one it was built with.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402

ALLOWED = {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2",
           "librt.so.1", "ld-linux-x86-64.so.2"}
GLIBC_MAX = (2, 28)
CACHE = "/var/cache/pyxray/roots"
SID = os.environ.get("PYX_ROOT_DIR", "/var/cache/pyxray/roots/sid")


def sh(argv, timeout=120):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def compare_stacks(chk, fx, doc, what):
    """Every truth thread's function names, innermost first, are pyxray's."""
    got = {t.get("thread_id"): t for t in doc.get("threads") or []}
    bad = []
    for t in fx.truth["threads"]:
        g = got.get(t["thread_id"])
        if g is None:
            bad.append("thread %s (%s) missing" % (t["thread_id"], t["name"]))
            continue
        want = [f["function"] for f in t["frames"]]
        have = [f.get("function") for f in g.get("frames") or []]
        if t["role"] == "spinner":
            ok = have[-len(want[1:]):] == want[1:] if len(want) > 1 else True
        else:
            ok = have == want
        if not ok:
            bad.append("thread %s: want %s, got %s" % (t["name"], want, have))
    chk.ok(doc.get("threads") and not bad,
           "%s: every thread's stack matches the truth" % what,
           "\n".join("      " + b for b in bad))


def find_binary():
    b = os.environ.get("PYX_PORTABLE_BIN")
    if b:
        return b, None
    found = sorted(glob.glob(os.path.join(T.SOURCE_DIR, "dist",
                                          "pyxray-*-x86_64-linux")),
                   key=os.path.getmtime)
    if found:
        return found[-1], None
    why = None
    for f in glob.glob(os.path.join(CACHE, "build-*.failed")):
        with open(f) as fh:
            why = fh.read().strip()
    return None, why or ("no portable binary: run scripts/portable.sh (or "
                         "scripts/test.sh), or set PYX_PORTABLE_BIN")


def check_elf(chk, b):
    rc, dyn, err = sh(["readelf", "-d", b])
    needed = set(re.findall(r"\(NEEDED\).*\[(.*)\]", dyn))
    chk.ok(rc == 0 and needed and needed <= ALLOWED,
           "NEEDED is only glibc's libraries",
           "      NEEDED %s, not allowed: %s" % (sorted(needed),
                                                sorted(needed - ALLOWED)))
    chk.ok("(RPATH)" not in dyn and "(RUNPATH)" not in dyn,
           "no RPATH/RUNPATH")
    rc, syms, _ = sh(["readelf", "-W", "--dyn-syms", b])
    versions = set()
    foreign = []
    for line in syms.splitlines():
        f = line.split()
        if len(f) < 8 or f[6] != "UND":
            continue
        name = f[7]
        m = re.search(r"@GLIBC_(\d+)\.(\d+)(?:\.(\d+))?", name)
        if m:
            versions.add(tuple(int(x) for x in m.groups() if x is not None))
        elif re.match(r"(dwfl_|dwarf_|elf_|gelf_|ZSTD_|LZ4|lzma_|"
                      r"BZ2_|inflate|deflate)", name):
            foreign.append(name)
    newest = max(versions) if versions else None
    chk.ok(newest is not None and newest[:2] <= GLIBC_MAX,
           "newest GLIBC_ symbol version %s <= 2.28"
           % (".".join(map(str, newest)) if newest else "?"),
           "      versions: %s" % sorted(versions))
    chk.ok(not foreign, "elfutils and the compression libraries are linked "
           "in (no such symbol imported)", "      imported: %s" % foreign)


def run_in_root(root, binary, pid):
    """pyxray stacks PID --json run chrooted to root, with the host's
    /proc; the binary bind-mounted at /pyxray-portable."""
    d = T.tmpdir()
    shutil.copy(binary, os.path.join(d, "pyxray"))
    script = r'''
set -e
root=$1 d=$2 pid=$3
mkdir -p "$root/pyxray-portable"
mount --bind "$d" "$root/pyxray-portable"
mount --bind /proc "$root/proc"
exec chroot "$root" /pyxray-portable/pyxray stacks "$pid" --json
'''
    return T.run(["unshare", "--mount", "--propagation", "private", "bash",
                  "-c", script, "in-root", root, d, str(pid)], timeout=60)


def main():
    args = T.parse_args(__doc__)
    b, why = find_binary()
    if not b:
        T.skip("-", "", why)
    b = os.path.abspath(b)
    T.log("portable binary: %s" % b)
    chk = T.Checker("portable binary")
    try:
        check_elf(chk, b)
        res = T.pyxray(b, "--version")
        chk.ok(res.rc == 0 and re.search(r"CPython 3\.\d+ to 3\.\d+", res.out),
               "--version names the CPython versions", "      " +
               res.describe())
        py = T.find_dwarf_python()
        if py:
            with T.Fixture(py) as fx:
                res = T.pyxray(b, "stacks", fx.pid, "--json", timeout=60)
                if chk.ok(res.rc == 0, "stacks on this machine (%s)" % py,
                          "      " + res.describe()):
                    compare_stacks(chk, fx, res.json(), "this machine")
        else:
            T.log("  part skipped: this machine: no Python with DWARF")
        spec = "root:%s:python3.14:container" % SID
        problem = T.spec(spec).root_problem()
        if problem:
            T.log("  part skipped: another root: %s" % problem)
        else:
            with T.Fixture(spec) as fx:
                res = run_in_root(SID, b, fx.pid)
                if chk.ok(res.rc == 0, "stacks from inside the root %s "
                          "(its glibc) on its python3.14" % SID,
                          "      " + res.describe()):
                    try:
                        doc = json.loads(res.out)
                    except ValueError as e:
                        chk.fail("its output is JSON", str(e))
                    else:
                        compare_stacks(chk, fx, doc, "inside the root")
    finally:
        T.cleanup()
    return chk.finish()


if __name__ == "__main__":
    sys.exit(main())
