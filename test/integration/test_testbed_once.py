"""The test bed itself (docs/test-bed.md): the Debian unstable root that
scripts/mkroot.sh makes, and the two ways pyxtest.py runs its interpreters.

  test_testbed_once.py --pyxray BIN --python PY    exit 0, 1 or 77

Checks:
  * the root ($PYX_ROOT_DIR, default /var/cache/pyxray/roots/sid) is complete
    and is the one recorded: every file of its build table (pyxray-builds.json)
    has the recorded build-id and package version, every debug file the
    build-id of its interpreter, and docs/test-bed-builds.md is its table;
  * each interpreter runs in both modes, reports the recorded version, and a
    fixture started through pyxtest (Fixture) writes its truth: container
    mode in its own PID and mount namespaces chrooted to the root, with the
    target's debug file in that root; hostld mode on the host through the
    root's loader, with no debug file at any path pyxray searches
    (/usr/lib/debug/.build-id/xx/yyy.debug, the .gnu_debuglink places);
  * killing a fixture leaves no process behind;
  * the gate names its skips: no root ("no test root: <reason>") and an
    unsupported version ("python3.14 3.14.x (root sid, container):
    unsupported version ...");
  * mkroot.sh reuses a current root, also when run twice at once.
Without a root (no network for debootstrap): a named skip.
"""

import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402

ROOT = os.environ.get("PYX_ROOT_DIR") or "/var/cache/pyxray/roots/sid"
MKROOT = os.path.join(T.SOURCE_DIR, "scripts", "mkroot.sh")
REPO_TABLE = os.path.join(T.SOURCE_DIR, "docs", "test-bed-builds.md")
STARTED = []  # host PIDs of the fixtures this test started
GATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pyxtest.py")


def dpkg_version(pkg):
    out = subprocess.run(["dpkg-query", "--admindir=%s/var/lib/dpkg" % ROOT,
                          "-W", "-f=${Version}", pkg], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, universal_newlines=True)
    return out.stdout.strip() or None


def debuglink(path):
    """The .gnu_debuglink file name of an ELF file, or None."""
    out = subprocess.run(["readelf", "-x", ".gnu_debuglink", path],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         universal_newlines=True)
    raw = b""
    for line in out.stdout.splitlines():
        m = re.match(r"\s*0x[0-9a-f]+ ((?:[0-9a-f]{2,8} ){1,4})", line + " ")
        if m:
            raw += bytes.fromhex(m.group(1).replace(" ", ""))
    name = raw.split(b"\0")[0].decode("ascii", "replace")
    return name or None


def host_debug_candidates(spec, binary):
    """Every host path pyxray's resolver (lib/target/files.c) tries for a
    hostld target's binary: by build-id and by debuglink under the target's
    (the host's) /usr/lib/debug, and beside the binary."""
    bid = T.build_id(binary)
    cands = []
    if bid:
        cands.append("/usr/lib/debug/.build-id/%s/%s.debug" % (bid[:2], bid[2:]))
    link = debuglink(binary)
    if link:
        d = os.path.dirname(binary)
        cands += ["/usr/lib/debug%s/%s" % (d, link), os.path.join(d, link),
                  os.path.join(d, ".debug", link)]
    return cands


def check_recorded(chk, rows):
    for r in rows:
        path = os.path.join(ROOT, r["path"].lstrip("/"))
        what = "%s (%s)" % (r["path"], r["python_version"])
        if not chk.ok(os.path.isfile(path), "%s exists in the root" % what):
            continue
        chk.ok(T.build_id(path) == r["build_id"],
               "%s has the recorded build-id %s" % (what, r["build_id"]),
               "      now %s" % T.build_id(path))
        chk.ok(dpkg_version(r["package"]) == r["package_version"],
               "%s: package %s %s as recorded" % (what, r["package"],
                                                   r["package_version"]),
               "      dpkg says %s" % dpkg_version(r["package"]))
        if r["debug_file"]:
            dbg = os.path.join(ROOT, r["debug_file"].lstrip("/"))
            chk.ok(os.path.isfile(dbg) and T.build_id(dbg) == r["build_id"],
                   "%s: debug file %s has its build-id" % (what, r["debug_file"]))
        elif r["embedded_dwarf"]:
            chk.ok(T._has_debug_info(path), "%s: DWARF embedded" % what)
        else:
            chk.fail("%s: has a debug file or embedded DWARF" % what)


def check_mode(chk, spec, row):
    """One interpreter in one mode, through pyxtest as the tests use it."""
    what = spec.label()
    version = T.python_version(spec.text)
    chk.ok(version == row["python_version"],
           "%s reports %s, as recorded" % (what, version),
           "      recorded %s" % row["python_version"])
    chk.ok(T.version_from_name(spec.text) == T.vtuple(version),
           "%s: version by name %s" % (what, T.version_from_name(spec.text)))
    try:
        fx = T.Fixture(spec.text, threads=1, lifetime=60)
    except RuntimeError as e:
        chk.fail("%s: the stacks fixture starts and writes its truth" % what,
                 "      %s" % e)
        return
    pid = fx.pid
    STARTED.append(pid)
    try:
        chk.ok(fx.truth["python_version"] == version,
               "%s: fixture truth from %s (host PID %d, its own %s)"
               % (what, fx.truth["python_version"], pid, fx.truth["pid"]))
        root = os.readlink("/proc/%d/root" % pid)
        exe = os.readlink("/proc/%d/exe" % pid)
        if spec.mode == "container":
            chk.ok(fx.truth["pid"] != pid and T.ns_pid(pid) == fx.truth["pid"],
                   "%s: in its own PID namespace" % what)
            chk.ok(os.readlink("/proc/%d/ns/mnt" % pid) !=
                   os.readlink("/proc/self/ns/mnt"),
                   "%s: in its own mount namespace" % what)
            chk.ok(root == ROOT, "%s: rooted at %s" % (what, root))
            chk.ok(exe == os.path.realpath(spec.path),
                   "%s: runs the root's %s" % (what, spec.name), "      " + exe)
            dwarf, where = T.has_dwarf(spec.text)
            chk.ok(dwarf and where.startswith(ROOT + "/"),
                   "%s: DWARF in the target's root (%s)" % (what, where))
        else:
            chk.ok(fx.truth["pid"] == pid, "%s: in the host's PID namespace" % what)
            chk.ok(root == "/", "%s: the host's / is its root" % what)
            chk.ok(exe.startswith(ROOT + "/") and "ld-linux" in exe,
                   "%s: started by the root's dynamic loader" % what,
                   "      " + exe)
            with open("/proc/%d/maps" % pid) as f:
                maps = f.read()
            libc = re.findall(r"(\S*/libc\.so\.6)$", maps, re.M)
            chk.ok(libc and all(p.startswith(ROOT + "/") for p in libc),
                   "%s: maps the root's libc, not the host's" % what,
                   "      %s" % libc)
            binary = T.interpreter_binary(spec.text)
            found = [c for c in host_debug_candidates(spec, binary)
                     if os.path.exists(c)]
            chk.ok(not found,
                   "%s: no debug file reachable from the host (%d places)"
                   % (what, len(host_debug_candidates(spec, binary))),
                   "      found %s" % found)
            chk.ok(not os.path.exists("/usr/lib/debug/.build-id/%s/%s.debug"
                                      % (row["build_id"][:2], row["build_id"][2:])),
                   "%s: nothing at /usr/lib/debug/.build-id/%s/%s.debug"
                   % (what, row["build_id"][:2], row["build_id"][2:]))
            dwarf, where = T.has_dwarf(spec.text)
            chk.ok(dwarf == bool(row["embedded_dwarf"]),
                   "%s: %s" % (what, "DWARF embedded in the binary only"
                               if dwarf else "no DWARF: pyxray must use "
                               "_Py_DebugOffsets and its tables"))
    finally:
        fx.stop()
    gone = not os.path.exists("/proc/%d" % pid)
    chk.ok(gone, "%s: the fixture is gone once stopped" % what)


def gate(spec_text, script, env=None):
    return subprocess.run([sys.executable, GATE, "gate", script, "--pyxray",
                           "/bin/true", "--python", spec_text],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=60, env=env)


def check_gate(chk, d, rows):
    # No root: every test on it skips, named, with mkroot's reason.
    bogus = os.path.join(d, "sid")
    with open(bogus + ".failed", "w") as f:
        f.write("debootstrap sid failed: E: Couldn't download packages\n")
    probe = os.path.join(d, "probe.py")
    with open(probe, "w") as f:
        f.write("print('RAN')\n")
    res = gate("root:%s:python3.14:container" % bogus, probe)
    chk.ok(res.returncode == T.SKIP and res.stdout.strip() ==
           "SKIP: python3.14 (root sid, container): no test root: "
           "debootstrap sid failed: E: Couldn't download packages",
           "no root: a named skip with mkroot's reason", "      %r" % res.stdout)
    os.unlink(bogus + ".failed")
    res = gate("root:%s:python3.15:hostld" % bogus, probe)
    chk.ok(res.returncode == T.SKIP and "SKIP: python3.15 (root sid, hostld): "
           "no test root: %s does not exist" % bogus in res.stdout,
           "no root, no reason: a named skip", "      %r" % res.stdout)
    res = gate("/bin/true-not-a-spec", probe)
    chk.ok(res.returncode == 0 and "RAN" in res.stdout,
           "a plain --python goes straight to the script")
    # An interpreter pyxray does not support yet: named, with its version.
    for r in rows:
        if r["kind"] != "interpreter":
            continue
        spec = T.Spec("root:%s:%s:container" % (ROOT, r["name"]))
        res = gate(spec.text, probe)
        if T.supported(T.vtuple(r["python_version"])):
            chk.ok(res.returncode == 0 and "RAN" in res.stdout,
                   "%s: supported, the gate runs the script" % spec.label())
        else:
            want = "SKIP: %s %s (root %s, container): %s" % (
                r["name"], r["python_version"], os.path.basename(ROOT),
                T.UNSUPPORTED)
            chk.ok(res.returncode == T.SKIP and want in res.stdout,
                   "gate: %r" % want, "      %r" % res.stdout)


def check_mkroot(chk):
    if subprocess.run([MKROOT, "--check"]).returncode != 0:
        T.log("  note: the root is not current for mkroot.sh's package list: "
              "not running mkroot.sh here (it would rebuild)")
        return
    stamp = os.path.join(ROOT, ".pyxray-stamp")
    before = os.stat(stamp).st_mtime_ns
    env = dict(os.environ, PYX_ROOT_DIR=ROOT)
    t0 = time.monotonic()
    ps = [subprocess.Popen([MKROOT], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True,
                           env=env) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in ps]
    wall = time.monotonic() - t0
    chk.ok(all(p.returncode == 0 and o[0].strip() == ROOT
               for p, o in zip(ps, outs)),
           "two mkroot.sh at once both print the cached root (%.1f s)" % wall,
           "      %r" % (outs,))
    chk.ok(os.stat(stamp).st_mtime_ns == before, "the cached root was reused")


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    probe = T.Spec("root:%s:python3.14:container" % ROOT)
    problem = probe.root_problem()
    if problem and not os.path.exists(os.path.join(ROOT, T.ROOT_STAMP)):
        T.log("SKIP: test bed (root %s): no test root: %s"
              % (os.path.basename(ROOT), problem))
        return T.SKIP
    chk = T.Checker("test bed %s" % ROOT)
    try:
        with open(os.path.join(ROOT, T.ROOT_BUILDS)) as f:
            rows = json.load(f)["rows"]
    except (OSError, ValueError, KeyError) as e:
        chk.fail("the root's build table %s is readable" % T.ROOT_BUILDS, str(e))
        return chk.finish()
    interpreters = [r for r in rows if r["kind"] == "interpreter"]
    chk.ok(interpreters, "the build table lists %d interpreters: %s" % (
        len(interpreters), ", ".join("%s %s" % (r["name"], r["python_version"])
                                     for r in interpreters)))
    check_recorded(chk, rows)
    try:
        with open(os.path.join(ROOT, "pyxray-builds.md")) as f:
            root_md = f.read()
        with open(REPO_TABLE) as f:
            repo_md = f.read()
        chk.ok(root_md == repo_md,
               "docs/test-bed-builds.md is this root's table (else run "
               "scripts/mkroot.sh)")
    except OSError as e:
        chk.fail("both build tables are readable", str(e))

    for r in interpreters:
        for mode in T.ROOT_MODES:
            check_mode(chk, T.Spec("root:%s:%s:%s" % (ROOT, r["name"], mode)), r)
    check_gate(chk, T.tmpdir(), interpreters)
    check_mkroot(chk)
    holders = [ns.holder.pid for ns in T._pidns]
    T.cleanup()
    left = [p for p in STARTED + holders if os.path.exists("/proc/%d" % p)]
    chk.ok(STARTED and not left,
           "no process of the %d fixtures and %d PID namespace(s) is left"
           % (len(STARTED), len(holders)), "      left: %s" % left)
    return chk.finish()


if __name__ == "__main__":
    sys.exit(main())
