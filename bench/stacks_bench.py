#!/usr/bin/env python3
"""Benchmark: `pyxray stacks` against gdb + CPython's python-gdb.py py-bt.

  stacks_bench.py [--pyxray BIN] [--python PY ...] [--threads 5,32]
                  [--n 20] [--gdb-n 5] [--no-gdb]

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
Prints a markdown table.  See bench/README.md.
"""

import argparse
import collections
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


def pyxray_names(doc, fixture_file):
    c = collections.Counter()
    for t in doc["threads"]:
        for f in t["frames"]:
            if f["file"] == fixture_file and f["name"] in WORKER_FUNCS:
                c[f["name"]] += 1
    return c


def bench_one(args, py, nthreads, rows, problems):
    version = T.python_version(py)
    label = "%s/%d" % (version, nthreads)
    d = T.tmpdir()
    gap = Gap(os.path.join(d, "gap"))
    fx = T.Fixture(py, threads=nthreads - 2, gap_file=os.path.join(d, "gap"),
                   lifetime=1800, timeout=60)
    try:
        real = len(T.thread_states(fx.pid))
        if real != nthreads:
            problems.append("%s: fixture has %d threads, not %d"
                            % (label, real, nthreads))
        # the spinner's own jitter with nobody looking
        idle = []
        for _ in range(5):
            gap.reset()
            time.sleep(0.1)
            idle.append(gap.read_ms())

        walls, pauses, observed = [], [], []
        pyx_doc = None
        for i in range(args.n):
            res, obs = measured(gap, [args.pyxray, "stacks", str(fx.pid),
                                      "--json"], 60)
            if res.rc != 0:
                problems.append("%s: pyxray failed: %s" % (label,
                                                           res.describe()))
                break
            doc = res.json()
            pyx_doc = pyx_doc or doc
            walls.append(res.wall * 1000)
            pauses.append(float(doc["pause_ms"]))
            observed.append(obs)
        if walls:
            rows.append({"tool": "pyxray", "python": version,
                         "threads": nthreads, "n": len(walls),
                         "wall_med": statistics.median(walls),
                         "wall_p90": p90(walls),
                         "pause_self": statistics.median(pauses),
                         "pause_obs": statistics.median(observed),
                         "pause_obs_p90": p90(observed),
                         "idle": statistics.median(idle)})

        gdbpy = os.path.join(os.path.dirname(os.path.realpath(py)),
                             os.path.basename(py) + "-gdb.py")
        if args.no_gdb:
            return
        if not os.path.exists(gdbpy):
            problems.append("%s: no %s, gdb not measured" % (label, gdbpy))
            return
        gwalls, gobs = [], []
        gdb_out = None
        for i in range(args.gdb_n):
            res, obs = measured(gap, [
                "gdb", "-nx", "-p", str(fx.pid), "-batch",
                "-iex", "set debuginfod enabled off",
                "-ex", "source " + gdbpy,
                "-ex", "thread apply all py-bt"], 300)
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
                         "idle": statistics.median(idle)})
        if pyx_doc is not None and gdb_out is not None:
            want = pyxray_names(pyx_doc, fx.truth["fixture_file"])
            got = gdb_names(gdb_out, fx.truth["fixture_file"])
            expect = (nthreads - 2) * 3 + (nthreads - 2 + 1) // 2
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


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pyxray", default=os.path.join(SOURCE_DIR, "build",
                                                     "pyxray"))
    ap.add_argument("--python", action="append",
                    help="target Python (repeatable); default 3.11 and 3.12")
    ap.add_argument("--threads", default="5,32",
                    help="comma-separated thread counts (all threads)")
    ap.add_argument("--n", type=int, default=20, help="pyxray repetitions")
    ap.add_argument("--gdb-n", type=int, default=5, help="gdb repetitions")
    ap.add_argument("--no-gdb", action="store_true")
    args = ap.parse_args()
    args.pyxray = os.path.abspath(args.pyxray)
    T.require_pyxray(args.pyxray)
    pythons = args.python or DEFAULT_PYTHONS
    counts = [int(x) for x in args.threads.split(",")]
    if min(counts) < 3:
        ap.error("a fixture has at least 3 threads (main, spinner, worker)")

    rows, problems = [], []
    for py in pythons:
        for n in counts:
            print("measuring %s with %d threads ..." % (py, n), flush=True)
            bench_one(args, py, n, rows, problems)

    gdb_wall = dict(((r["python"], r["threads"]), r["wall_med"])
                    for r in rows if r["tool"] != "pyxray")
    gdb_obs = dict(((r["python"], r["threads"]), r["pause_obs"])
                   for r in rows if r["tool"] != "pyxray")
    print()
    print("| tool | python | threads | runs | wall median ms | wall p90 ms "
          "| pause self-reported ms | pause observed median (p90) ms "
          "| idle gap ms | speedup wall (pause) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        key = (r["python"], r["threads"])
        if r["tool"] == "pyxray" and key in gdb_wall:
            sp = "%.0fx (%.0fx)" % (gdb_wall[key] / r["wall_med"],
                                    gdb_obs[key] / max(r["pause_obs"], 1e-3))
        else:
            sp = "1x" if r["tool"] != "pyxray" else "-"
        print("| %s | %s | %d | %d | %s | %s | %s | %s (%s) | %s | %s |" % (
            r["tool"], r["python"], r["threads"], r["n"], fmt(r["wall_med"]),
            fmt(r["wall_p90"]), fmt(r["pause_self"]), fmt(r["pause_obs"]),
            fmt(r["pause_obs_p90"]), fmt(r["idle"]), sp))
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
