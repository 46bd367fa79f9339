#!/usr/bin/env python3
"""Benchmark: `pyxray stacks` against gdb + CPython's python-gdb.py py-bt.

  stacks_bench.py [--pyxray BIN] [--pyxray-baseline BIN] [--python PY ...]
                  [--threads 5,32] [--n 20] [--gdb-n 5] [--no-gdb]

PY is an interpreter path or a test bed spec (root:DIR:NAME:container|
hostld, docs/test-bed.md): the fixture then runs in that mode, and pyxray and
gdb are given its PID as the host sees it.

For every Python and thread count, one stacks_target.py fixture (thread
count = all threads of the process: main + spinner + workers) is measured by
both tools in the same run:
  * wall time of each tool invocation (pyxray: `pyxray stacks PID --json`;
    gdb: `gdb -nx -p PID -batch -ex 'source <prefix>/bin/pythonX.Y-gdb.py'
    -ex 'thread apply all py-bt'`);
  * pyxray's self-reported pause_ms (from --json);
  * the pause the target itself experienced: the fixture's spinner thread
    records the largest gap between two iterations of its loop into an
    mmap'd file, reset before each run and read after it.
With --pyxray-baseline, a second pyxray binary (an older build) reads the
same target, alternating run by run with --pyxray, and the table gets its
rows and the ratio of medians new/baseline.
Where gdb cannot read a target (a container in another PID namespace, no
libthread_db that matches the target's libc, no debug file: py-bt finds no
Python frame), its row says "gdb: cannot read this target (reason)".
Prints a markdown table.  See bench/README.md.
"""

import argparse
import collections
import contextlib
import json
import math
import mmap
import os
import re
import statistics
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SOURCE_DIR, "test", "integration"))
import pyxtest as T  # noqa: E402

DEFAULT_PYTHONS = ["/root/.pyenv/versions/3.11.7/bin/python3.11",
                   "/root/.pyenv/versions/3.12.1/bin/python3.12"]
WORKER_FUNCS = ("worker_outer", "worker_middle", "worker_inner",
                "block_on_lock")


# The baseline's own layout cache: two builds alternating on one cache
# directory overwrite each other's entry for the same interpreter (an entry
# is keyed by build-id, and each build rejects the other's field
# specification), so every run would read the DWARF again (about 35 ms on
# 3.12 here) and the comparison would measure that.
BASELINE_CACHE = os.path.expanduser("~/.cache/pyxray-baseline")


@contextlib.contextmanager
def own_cache(baseline):
    """Around a run of the baseline binary: its layout cache apart."""
    if not baseline:
        yield
        return
    old = os.environ.get("PYX_CACHE_DIR")
    os.environ["PYX_CACHE_DIR"] = BASELINE_CACHE
    try:
        yield
    finally:
        if old is None:
            del os.environ["PYX_CACHE_DIR"]
        else:
            os.environ["PYX_CACHE_DIR"] = old


class Gap(object):
    """The spinner's largest-gap cell (see fixtures/stacks_target.py)."""

    def __init__(self, path):
        with open(path, "wb") as f:
            f.write(b"\0" * 16)
        fd = os.open(path, os.O_RDWR)
        self.mm = mmap.mmap(fd, 16)
        os.close(fd)

    def reset(self, timeout=5.0):
        req = (self.mm[8] + 1) % 256
        self.mm[8] = req
        deadline = time.monotonic() + timeout
        while self.mm[9] != req:
            if time.monotonic() > deadline:
                raise RuntimeError("the spinner did not acknowledge a reset")
            time.sleep(0.001)

    def read_ms(self):
        return struct.unpack_from("d", self.mm, 0)[0] * 1000.0


def p90(xs):
    s = sorted(xs)
    return s[max(0, int(math.ceil(0.9 * len(s))) - 1)]


def measured(gap, argv, timeout):
    """Run argv between a gap reset and a gap read."""
    gap.reset()
    time.sleep(0.02)
    res = T.run(argv, timeout=timeout)
    time.sleep(0.02)  # let the spinner run an iteration after resuming
    return res, gap.read_ms()


def gdb_names(text, fixture_file):
    """Counter of function names gdb's py-bt shows in the fixture file."""
    c = collections.Counter()
    for m in re.finditer(r'File "([^"]+)", line \d+, in (\S+)', text):
        if m.group(1) == fixture_file and m.group(2) in WORKER_FUNCS:
            c[m.group(2)] += 1
    return c


# What gdb says when it cannot read a target, and how the table says it.
GDB_TROUBLE = (
    ("Unable to find libthread_db matching", "no libthread_db matches its libc"),
    ("different PID namespaces", "target in another PID namespace"),
    ("Unable to locate python frame", "py-bt: \"Unable to locate python "
     "frame\" in every thread"),
    ("No symbol table is loaded", "no debug symbols"),
    ("Could not load vsyscall page", "no executable"),
)


def gdb_script(spec, py):
    """CPython's python-gdb.py for this interpreter (host path), or None."""
    if spec.kind == "root":
        name = os.path.join(spec.root, "usr/share/gdb/auto-load/usr/bin",
                            spec.name + "-gdb.py")
        return name if os.path.exists(name) else None
    name = os.path.join(os.path.dirname(os.path.realpath(py)),
                        os.path.basename(py) + "-gdb.py")
    return name if os.path.exists(name) else None


def gdb_cannot_read(res, found):
    """None if gdb read the target (found: worker frames it named), else the
    reason, from gdb's own messages."""
    if res.rc == 0 and found:
        return None
    text = res.out + "\n" + res.err
    why = [w for key, w in GDB_TROUBLE if key in text]
    if res.rc != 0:
        why.insert(0, "exit %s" % res.rc)
    return "; ".join(why) or "py-bt named no Python frame of the fixture"


def python_label(py, version):
    """'3.11.7', or '3.14.10 sid container' for a test bed spec."""
    spec = T.spec(py)
    if spec.kind != "root":
        return version
    return "%s %s %s" % (version, os.path.basename(spec.root), spec.mode)


def pyxray_names(doc, fixture_file):
    c = collections.Counter()
    for t in doc["threads"]:
        for f in t["frames"]:
            if f["file"] == fixture_file and f["name"] in WORKER_FUNCS:
                c[f["name"]] += 1
    return c


def expected_frames(nthreads):
    """Worker frames of a fixture: 3 per worker, plus block_on_lock in
    every other one."""
    return (nthreads - 2) * 3 + (nthreads - 2 + 1) // 2


def check_alone(label, doc, fx, nthreads, problems):
    """Where gdb cannot say, pyxray's worker frames against the count the
    fixture implies."""
    if doc is None:
        return
    want = pyxray_names(doc, fx.truth["fixture_file"])
    if sum(want.values()) != expected_frames(nthreads):
        problems.append("%s: pyxray named %s, expected %d worker frames"
                        % (label, dict(want), expected_frames(nthreads)))
    else:
        print("sanity %s: pyxray names the %d worker frames %s (no gdb)"
              % (label, expected_frames(nthreads), dict(want)), flush=True)


def pyxray_tools(args):
    """[(tool label, binary)]: --pyxray, then --pyxray-baseline if given."""
    tools = [("pyxray", args.pyxray)]
    if args.pyxray_baseline:
        tools.append(("pyxray baseline", args.pyxray_baseline))
    return tools


def idle_gap(gap):
    """The spinner's own jitter with nobody looking (median of 5)."""
    idle = []
    for _ in range(5):
        gap.reset()
        time.sleep(0.1)
        idle.append(gap.read_ms())
    return statistics.median(idle)


def bench_one(args, py, nthreads, rows, problems):
    version = python_label(py, T.python_version(py))
    spec = T.spec(py)
    label = "%s/%d" % (version, nthreads)
    d = T.tmpdir()  # under /tmp for a spec: the container shares it
    gap = Gap(os.path.join(d, "gap"))
    fx = T.Fixture(py, threads=nthreads - 2, gap_file=os.path.join(d, "gap"),
                   lifetime=1800, timeout=60)
    try:
        real = len(T.thread_states(fx.pid))
        if real != nthreads:
            problems.append("%s: fixture has %d threads, not %d"
                            % (label, real, nthreads))
        idle = idle_gap(gap)

        # Each pyxray binary in turn, run by run, so that both see the
        # same machine state.
        tools = pyxray_tools(args)
        res_of = dict((t, {"walls": [], "pauses": [], "observed": [],
                           "doc": None, "failed": False}) for t, _ in tools)
        for i in range(args.n):
            for tool, binary in tools:
                r = res_of[tool]
                if r["failed"]:
                    continue
                with own_cache(tool != "pyxray"):
                    res, obs = measured(gap, [binary, "stacks", str(fx.pid),
                                              "--json"], 60)
                if res.rc != 0:
                    r["failed"] = True
                    if tool != "pyxray" and i == 0:
                        # An older build may not know this target at all.
                        r["cannot"] = "%s: cannot read this target (%s)" % (
                            tool, (res.err.strip().splitlines() or
                                   ["exit %s" % res.rc])[-1])
                        continue
                    problems.append("%s: %s failed: %s"
                                    % (label, tool, res.describe()))
                    continue
                doc = res.json()
                r["doc"] = r["doc"] or doc
                r["walls"].append(res.wall * 1000)
                r["pauses"].append(float(doc["pause_ms"]))
                r["observed"].append(obs)
        for tool, _ in tools:
            r = res_of[tool]
            if r.get("cannot"):
                rows.append({"tool": tool, "python": version,
                             "threads": nthreads, "cannot": r["cannot"]})
            elif r["walls"]:
                rows.append({"tool": tool, "python": version,
                             "threads": nthreads, "n": len(r["walls"]),
                             "wall_med": statistics.median(r["walls"]),
                             "wall_p90": p90(r["walls"]),
                             "pause_self": statistics.median(r["pauses"]),
                             "pause_obs": statistics.median(r["observed"]),
                             "pause_obs_p90": p90(r["observed"]),
                             "idle": idle})
        pyx_doc = res_of["pyxray"]["doc"]

        if args.no_gdb:
            check_alone(label, pyx_doc, fx, nthreads, problems)
            return
        gdbpy = gdb_script(spec, py)
        if gdbpy is None:
            check_alone(label, pyx_doc, fx, nthreads, problems)
            rows.append({"tool": "gdb py-bt", "python": version,
                         "threads": nthreads, "cannot": "gdb: cannot read "
                         "this target (no python-gdb.py for it)"})
            return
        gwalls, gobs = [], []
        gdb_out = None
        for i in range(args.gdb_n):
            res, obs = measured(gap, [
                "gdb", "-nx", "-p", str(fx.pid), "-batch",
                "-iex", "set debuginfod enabled off",
                "-ex", "source " + gdbpy,
                "-ex", "thread apply all py-bt"], 300)
            if i == 0:
                why = gdb_cannot_read(res, gdb_names(
                    res.out, fx.truth["fixture_file"]))
                if why is not None and not T.has_dwarf(py)[0]:
                    why += "; no debug file for the interpreter"
                if why is not None:
                    # Once is enough to know: a failed read is no timing.
                    rows.append({"tool": "gdb py-bt", "python": version,
                                 "threads": nthreads, "cannot": "gdb: cannot "
                                 "read this target (%s)" % why})
                    print("gdb %s: cannot read this target (%s)"
                          % (label, why), flush=True)
                    check_alone(label, pyx_doc, fx, nthreads, problems)
                    return
            if res.rc != 0:
                problems.append("%s: gdb failed: %s" % (label,
                                                        res.describe()))
                break
            gdb_out = gdb_out or res.out
            gwalls.append(res.wall * 1000)
            gobs.append(obs)
        if gwalls:
            rows.append({"tool": "gdb py-bt", "python": version,
                         "threads": nthreads, "n": len(gwalls),
                         "wall_med": statistics.median(gwalls),
                         "wall_p90": p90(gwalls), "pause_self": None,
                         "pause_obs": statistics.median(gobs),
                         "pause_obs_p90": p90(gobs),
                         "idle": idle})
        if pyx_doc is not None and gdb_out is not None:
            want = pyxray_names(pyx_doc, fx.truth["fixture_file"])
            got = gdb_names(gdb_out, fx.truth["fixture_file"])
            expect = expected_frames(nthreads)
            if want != got or sum(want.values()) != expect:
                problems.append("%s: worker functions differ: pyxray %s, "
                                "gdb %s (expected %d frames)"
                                % (label, dict(want), dict(got), expect))
            else:
                print("sanity %s: pyxray and gdb agree on %d worker frames "
                      "%s" % (label, expect, dict(want)), flush=True)
    finally:
        left = T.wait_all_running(fx.pid, 1.0)
        if left:
            problems.append("%s: target threads left stopped: %s"
                            % (label, left))
        fx.stop()


def fmt(x):
    return "-" if x is None else "%.1f" % x


def print_table(rows):
    """The markdown table; gdb's row is the reference of 'speedup', the
    baseline's of 'new/baseline' (ratio of the medians: wall, observed
    pause)."""
    by = dict(((r["tool"], r["python"], r["threads"]), r) for r in rows)
    print("| tool | python | threads | runs | wall median ms | wall p90 ms "
          "| pause self-reported ms | pause observed median (p90) ms "
          "| idle gap ms | speedup vs gdb wall (pause) "
          "| new/baseline wall (pause) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "cannot" in r:
            print("| %s | %s | %d | - | %s | - | - | - | - | - | - |"
                  % (r["tool"], r["python"], r["threads"],
                     r["cannot"].replace("|", "/")))
            continue
        g = by.get(("gdb py-bt", r["python"], r["threads"]))
        b = by.get(("pyxray baseline", r["python"], r["threads"]))
        if r["tool"] == "gdb py-bt":
            sp = "1x"
        elif g is not None and "cannot" not in g:
            sp = "%.0fx (%.0fx)" % (g["wall_med"] / r["wall_med"],
                                    g["pause_obs"] / max(r["pause_obs"], 1e-3))
        else:
            sp = "-"
        if r["tool"] == "pyxray" and b is not None and "cannot" not in b:
            ratio = "%.2f (%.2f)" % (r["wall_med"] / b["wall_med"],
                                     r["pause_obs"] / max(b["pause_obs"],
                                                          1e-3))
        elif r["tool"] == "pyxray baseline":
            ratio = "1"
        else:
            ratio = "-"
        print("| %s | %s | %d | %d | %s | %s | %s | %s (%s) | %s | %s | %s |"
              % (r["tool"], r["python"], r["threads"], r["n"],
                 fmt(r["wall_med"]), fmt(r["wall_p90"]), fmt(r["pause_self"]),
                 fmt(r["pause_obs"]), fmt(r["pause_obs_p90"]), fmt(r["idle"]),
                 sp, ratio))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pyxray", default=os.path.join(SOURCE_DIR, "build",
                                                     "pyxray"))
    ap.add_argument("--pyxray-baseline", metavar="BIN",
                    help="an older pyxray measured on the same targets, "
                    "alternating with --pyxray")
    ap.add_argument("--python", action="append",
                    help="target Python: a path or a test bed spec "
                    "root:DIR:NAME:MODE (repeatable); default 3.11 and 3.12")
    ap.add_argument("--threads", default="5,32",
                    help="comma-separated thread counts (all threads)")
    ap.add_argument("--n", type=int, default=20,
                    help="pyxray repetitions (each binary)")
    ap.add_argument("--gdb-n", type=int, default=5, help="gdb repetitions")
    ap.add_argument("--no-gdb", action="store_true")
    args = ap.parse_args()
    args.pyxray = os.path.abspath(args.pyxray)
    T.require_pyxray(args.pyxray)
    if args.pyxray_baseline:
        args.pyxray_baseline = os.path.abspath(args.pyxray_baseline)
        T.require_pyxray(args.pyxray_baseline)
    pythons = args.python or DEFAULT_PYTHONS
    counts = [int(x) for x in args.threads.split(",")]
    if min(counts) < 3:
        ap.error("a fixture has at least 3 threads (main, spinner, worker)")

    rows, problems = [], []
    for py in pythons:
        for n in counts:
            print("measuring %s with %d threads ..." % (py, n), flush=True)
            bench_one(args, py, n, rows, problems)

    print()
    print_table(rows)
    if problems:
        print()
        for p in problems:
            print("PROBLEM: " + p)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        T.cleanup()
