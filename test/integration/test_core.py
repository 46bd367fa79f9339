#!/usr/bin/env python3
"""pyxray on core files, one Python: the same answers as on the live process.

  test_core.py --pyxray BIN --python PY      exit 0 pass, 1 fail, 77 skip

For each Python (and each test bed spec):
  - gcore of stacks_target.py: `stacks CORE --json` has the fixture's
    threads, names and frames (its in-process truth), "paused 0 ms", the
    PID the process had; `--native` unwinds from the core's registers;
  - gcore of census_target.py: `census CORE` counts every fixture class as
    the truth does, and every type as the live census just before;
  - gcore of refs_target.py: `refs CORE --type T` finds the same targets and
    paths as on the live process;
  - a core the kernel wrote (RLIMIT_CORE, core_pattern "core"): stacks equal
    the truth (named skip where core_pattern pipes cores elsewhere, or for
    a container, whose core lands in its own root);
  - container mode: the core names the files as the container sees them; read
    with --sysroot ROOT (the core "moved to another tree").
Cores are deleted as soon as they are read.
"""

import json
import os
import resource
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402
import test_census as TC  # noqa: E402
import test_refs as TR  # noqa: E402
import test_stacks as TS  # noqa: E402


def gcore(pid, path):
    """gdb's gcore of pid into path; None or why it failed."""
    res = T.run(["gdb", "-batch", "-nx", "-p", str(pid), "-ex",
                 "gcore " + path], timeout=120)
    if not os.path.exists(path):
        return "gdb wrote no core: rc %s %s" % (res.rc, res.err[-500:])
    return None


def core_args(spec):
    """What a core of a target of spec needs to find its files: nothing.
    (gdb names a chroot's files by their host paths, as /proc/PID/maps
    does; test_core_once.py moves a core and its files under --sysroot.)"""
    return []


def guard_regions(pid):
    """Whether the target has guard regions (MADV_GUARD_INSTALL, glibc 2.42+
    thread stacks on Linux 6.13+: VmFlags "gu"): gdb 13's gcore cannot read
    such a mapping and writes it as zeros, so the C stack of each thread
    (where 3.14's entry frames live) is lost from its core."""
    try:
        with open("/proc/%d/smaps" % pid) as f:
            return any(l.startswith("VmFlags:") and " gu" in l for l in f)
    except OSError:
        return False


def check_stacks_doc(chk, fx, doc, label, pid, zeroed_stacks=False):
    truth = fx.truth
    chk.ok(doc.get("pid") == pid, "%s: pid %d" % (label, pid),
           "      got %r" % doc.get("pid"))
    chk.ok(doc.get("python_version") == truth["python_version"],
           "%s: python_version %s" % (label, truth["python_version"]),
           "      got %r" % doc.get("python_version"))
    chk.ok(doc.get("pause_ms") == 0, "%s: paused 0 ms" % label,
           "      got %r" % doc.get("pause_ms"))
    by_id = {t.get("thread_id"): t for t in doc.get("threads") or []}
    chk.ok(len(by_id) == len(truth["threads"]), "%s: %d threads"
           % (label, len(truth["threads"])), "      got %s" % sorted(
               (t.get("name"), t.get("thread_id")) for t in by_id.values()))
    for tt in truth["threads"]:
        got = by_id.get(tt["thread_id"])
        what = "%s: thread %s" % (label, tt["name"])
        if not chk.ok(got is not None, "%s present" % what):
            continue
        chk.ok(got.get("name") == tt["name"], "%s: name" % what,
               "      got %r" % got.get("name"))
        if not fx.spec.in_pid_namespace():
            chk.ok(got.get("native_thread_id") == tt["native_thread_id"],
                   "%s: native_thread_id %d" % (what, tt["native_thread_id"]),
                   "      got %r" % got.get("native_thread_id"))
        spin = truth["spinner_lines"] if tt["role"] == "spinner" else None
        want = tt["frames"]
        if zeroed_stacks and tt["role"] != "main":
            # The chain ends where it crosses the zeroed C stack: what is
            # shown must be the truth's innermost frames, at least one.
            n = len(got.get("frames") or [])
            chk.ok(n >= 1, "%s: some frames shown from a zeroed stack"
                   % what)
            want = want[:n]
        diff = TS.frame_diff(want, got.get("frames") or [], spin)
        chk.ok(not diff, "%s: frames match (%d)" % (what, len(tt["frames"])),
               "\n".join(diff))


def case_stacks(chk, args, spec):
    fx = T.Fixture(args.python, threads=4)
    d = T.tmpdir()
    core = os.path.join(d, "stacks.core")
    try:
        zeroed = guard_regions(fx.pid)
        if zeroed:
            T.log("  note: the target's thread stacks have guard regions: "
                  "gdb's gcore writes them as zeros; its threads' frames "
                  "are compared up to their C stacks (the kernel's core "
                  "below is compared whole)")
        why = gcore(fx.pid, core)
        if not chk.ok(why is None, "gcore of stacks_target", why):
            return
        res = T.pyxray(args.pyxray, "stacks", core, "--json",
                       *core_args(spec), timeout=120)
        if chk.ok(res.rc == 0, "stacks CORE --json exits 0", res.describe()):
            check_stacks_doc(chk, fx, res.json(), "gcore", fx.pid, zeroed)
        res = T.pyxray(args.pyxray, "stacks", core, *core_args(spec))
        chk.ok(res.rc == 0 and "Paused the target for 0.000 ms" in res.out,
               "stacks CORE (text): paused 0 ms", res.describe())
        worker = fx.thread(role="worker")
        chk.ok(worker["frames"][0]["name"] in res.out,
               "stacks CORE (text): %s shown" % worker["frames"][0]["name"])
        res = T.pyxray(args.pyxray, "stacks", core, "--native", "--json",
                       *core_args(spec), timeout=120)
        if chk.ok(res.rc == 0, "stacks CORE --native exits 0",
                  res.describe()):
            doc = res.json()
            natives = [f for t in doc["threads"] for f in t["frames"]
                       if f.get("native") and f.get("library")]
            libs = set(os.path.basename(f["library"]) for f in natives)
            chk.ok(any(l.startswith("libc") for l in libs),
                   "--native: frames in libc unwound from the core's "
                   "registers", "      libraries: %s" % sorted(libs))
        res = T.pyxray(args.pyxray, "info", core, "--json", *core_args(spec))
        if chk.ok(res.rc == 0, "info CORE exits 0", res.describe()):
            doc = res.json()
            c = doc.get("core") or {}
            chk.ok(c.get("writer") == "gdb" and c.get("pid") == fx.pid and
                   doc.get("python_version") == fx.truth["python_version"]
                   and c.get("threads") == len(fx.truth["threads"]) + 0
                   and c.get("executable"),
                   "info CORE: gdb's core of PID %d, its version, threads, "
                   "executable" % fx.pid, json.dumps(c)[:600])
    finally:
        fx.stop()
        if os.path.exists(core):
            os.unlink(core)


def census_doc(args, target, extra=()):
    res = T.pyxray(args.pyxray, "census", target, "--json", *extra,
                   timeout=180)
    return res, (res.json() if res.rc == 0 else None)


def case_census(chk, args, spec):
    fx = TC.CensusFixture(args.python)
    d = T.tmpdir()
    core = os.path.join(d, "census.core")
    try:
        live, ldoc = census_doc(args, fx.pid)
        if not chk.ok(live.rc == 0, "census PID (live) exits 0",
                      live.describe()):
            return
        why = gcore(fx.pid, core)
        if not chk.ok(why is None, "gcore of census_target", why):
            return
        res, doc = census_doc(args, core, core_args(spec))
        if not chk.ok(res.rc == 0, "census CORE exits 0", res.describe()):
            return
        chk.ok(doc["pid"] == fx.pid and doc["pause_ms"] == 0 and
               doc["copied_bytes"] == 0,
               "census CORE: pid %d, paused 0 ms, nothing copied" % fx.pid,
               "pid %r pause %r copied %r" % (doc["pid"], doc["pause_ms"],
                                              doc["copied_bytes"]))
        types = TC.by_type(doc)
        bad = ["%s: %d, truth %d" % (n, types.get(n, {}).get("tracked", 0),
                                      fx.truth["counts"].get(n, 0))
               for n in sorted(fx.truth["classes"])
               if types.get(n, {}).get("tracked", 0) !=
               fx.truth["counts"].get(n, 0)]
        chk.ok(not bad, "census CORE: every fixture class counted as the "
               "truth (%d classes)" % len(fx.truth["classes"]),
               "\n".join(bad))
        ltypes = TC.by_type(ldoc)
        bad = []
        for n in sorted(set(types) | set(ltypes)):
            a = ltypes.get(n, {}).get("tracked", 0)
            b = types.get(n, {}).get("tracked", 0)
            if abs(a - b) > max(2, 0.002 * a):
                bad.append("%s: core %d, live %d" % (n, b, a))
        chk.ok(not bad, "census CORE: every type as the live census "
               "(%d types)" % len(ltypes), "\n".join(bad[:30]))
        chk.ok(not doc.get("partial") and doc["bad_objects"] == 0,
               "census CORE: whole, not partial")
    finally:
        fx.stop()
        if os.path.exists(core):
            os.unlink(core)


def strip_refs(doc):
    """What must agree between a live and a core refs: the groups and
    their paths (addresses and timings aside)."""
    return (doc["targets"], doc.get("unreachable"),
            [(g.get("count"), TR.steps(g)) for g in doc.get("groups") or []])


def case_refs(chk, args, spec):
    p, logf, truth, d = TR.start(args.python)
    core = os.path.join(T.tmpdir(), "refs.core")
    try:
        names = ("MutDefault", "LruResult", "ClassItem", "Listener")
        live = {}
        for name in names:
            res = T.pyxray(args.pyxray, "refs", p.pid, "--type",
                           "__main__." + name, "--json", timeout=120)
            live[name] = res.json() if res.rc == 0 else None
        why = gcore(p.pid, core)
        if not chk.ok(why is None, "gcore of refs_target", why):
            return
        for name in names:
            res = T.pyxray(args.pyxray, "refs", core, "--type",
                           "__main__." + name, "--json", *core_args(spec),
                           timeout=120)
            if not chk.ok(res.rc == 0, "refs CORE --type %s exits 0" % name,
                          res.describe()):
                continue
            doc = res.json()
            chk.ok(doc["targets"] == truth["counts"][name],
                   "refs CORE %s: %d targets (truth %d)"
                   % (name, doc["targets"], truth["counts"][name]))
            if live[name] is not None:
                a, b = strip_refs(live[name]), strip_refs(doc)
                chk.ok(a == b, "refs CORE %s: the live groups and paths"
                       % name, "      live %s\n      core %s"
                       % (str(a)[:600], str(b)[:600]))
    finally:
        T.kill_child(p)
        logf.close()
        if os.path.exists(core):
            os.unlink(core)


def kernel_core_problem(spec):
    try:
        with open("/proc/sys/kernel/core_pattern") as f:
            pattern = f.read().strip()
    except OSError as e:
        return "cannot read core_pattern: %s" % e
    if pattern.startswith("|") or "/" in pattern:
        return ("core_pattern is %r: the kernel does not write the core "
                "in the process's directory (not changed by the tests)"
                % pattern)
    if spec.kind == "root" and spec.mode == "container":
        return "a container's core lands in its own root"
    return None


def kernel_core(python, d):
    """stacks_target.py under python, killed by SIGABRT with RLIMIT_CORE
    unlimited in d: (its Fixture, the core the kernel wrote or None)."""
    old = resource.getrlimit(resource.RLIMIT_CORE)
    cwd = os.getcwd()
    os.chdir(d)  # the fixture's working directory: where its core goes
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY,
                                                   resource.RLIM_INFINITY))
        fx = T.Fixture(python, threads=2)
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, old)
        os.chdir(cwd)
    # The truth is written before the main thread parks in time.sleep():
    # abort it only once it sleeps there, or the core holds write_truth.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/wchan" % fx.pid) as f:
                if "nanosleep" in f.read():
                    break
        except OSError:
            break
        time.sleep(0.02)
    os.kill(fx.pid, signal.SIGABRT)
    fx.proc.wait(60)
    cores = [os.path.join(d, n) for n in os.listdir(d)
             if n == "core" or n.startswith("core.")]
    return fx, (cores[0] if len(cores) == 1 else None)


def case_kernel(chk, args, spec):
    why = kernel_core_problem(spec)
    if why:
        T.log("  skip kernel core: %s" % why)
        return
    d = T.tmpdir()
    fx, core = kernel_core(args.python, d)
    try:
        pid = fx.pid
        if not chk.ok(core is not None, "the kernel wrote a core in %s" % d,
                      "      files: %s, rc %s" % (os.listdir(d),
                                                   fx.proc.returncode)):
            return
        res = T.pyxray(args.pyxray, "stacks", core, "--json", timeout=120)
        if chk.ok(res.rc == 0, "stacks KERNEL-CORE --json exits 0",
                  res.describe()):
            check_stacks_doc(chk, fx, res.json(), "kernel core", pid)
        res = T.pyxray(args.pyxray, "info", core, "--json")
        if chk.ok(res.rc == 0, "info KERNEL-CORE exits 0", res.describe()):
            c = res.json().get("core") or {}
            chk.ok(c.get("writer") == "kernel" and
                   c.get("signal") == signal.SIGABRT and c.get("pid") == pid,
                   "info KERNEL-CORE: the kernel's, SIGABRT, PID %d" % pid,
                   json.dumps(c)[:600])
        os.unlink(core)
    finally:
        fx.stop()


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    version = T.check_target_python(args.python)
    spec = T.spec(args.python)
    if not T.shutil.which("gdb"):
        T.skip(args.python, version, "gdb (for gcore) is not installed")
    chk = T.Checker("core %s (%s)" % (args.python, version))
    case_stacks(chk, args, spec)
    case_census(chk, args, spec)
    case_refs(chk, args, spec)
    case_kernel(chk, args, spec)
    return chk.finish()


if __name__ == "__main__":
    sys.exit(main())
