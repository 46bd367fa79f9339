#!/usr/bin/env python3
"""Benchmark: `pyxray stacks --native` against gdb's `thread apply all bt`.

  native_bench.py [--pyxray BIN] [--pyxray-baseline BIN] [--python PY ...]
                  [--threads 32] [--n 20] [--gdb-n 5]

For every Python, one fixtures/stacks_target.py target of --threads threads
in all (main, a spinner running pure Python, workers blocked in
Lock.acquire / Event.wait under three Python calls) is measured by three
commands, one after the other, in the same run:
  * pyxray: `pyxray stacks PID --native --json`
  * pyxray without --native (`pyxray stacks PID --json`), for reference
  * gdb:    `gdb -nx -p PID -batch -iex 'set debuginfod enabled off'
             -iex 'set auto-load python-scripts off'
             -ex 'thread apply all bt'`
Figures, as in bench/stacks_bench.py: wall time (fork to exit) median and
p90; pyxray's self-reported pause_ms; the pause the target observed (the
spinner's largest gap between two loop iterations, reset before each run);
the idle gap (the same with nobody attached); speedup = gdb wall / pyxray
wall (and gdb observed pause / pyxray observed pause).

With --pyxray-baseline, an older pyxray build's `stacks --native --json`
runs on the same target too, alternating run by run with --pyxray's, and
the table gives the ratio of the medians new/baseline.  PY may be a test bed
spec (root:DIR:NAME:MODE, docs/test-bed.md), as for stacks_bench.py.

Sanity, else a PROBLEM line and exit 1: both tools see every thread; for
each thread the non-inlined native functions pyxray names appear in gdb's
backtrace of that thread in order; no target thread is left stopped.
Prints a markdown table.  Stdlib only; runs as root.
"""

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(SOURCE_DIR, "test", "integration"))
import pyxtest as T  # noqa: E402
import stacks_bench as SB  # noqa: E402  (Gap, measured, p90)
import test_native as TN  # noqa: E402  (gdb parsing and comparison)

DEFAULT_PYTHONS = ["/root/.pyenv/versions/3.11.7/bin/python3.11",
                   "/root/.pyenv/versions/3.12.1/bin/python3.12"]


def run_tool(gap, argv, n, label, problems):
    walls, observed, outs = [], [], []
    for _ in range(n):
        res, obs = SB.measured(gap, argv, 300)
        if res.rc != 0:
            problems.append("%s failed: %s" % (label, res.describe()))
            break
        walls.append(res.wall * 1000)
        observed.append(obs)
        outs.append(res.out)
    return walls, observed, outs


def row(tool, version, nthreads, walls, observed, idle, pause_self=None):
    return {"tool": tool, "python": version, "threads": nthreads,
            "n": len(walls), "wall_med": statistics.median(walls),
            "wall_p90": SB.p90(walls), "pause_self": pause_self,
            "pause_obs": statistics.median(observed),
            "pause_obs_p90": SB.p90(observed), "idle": idle}


def sanity(label, doc, gdb_text, spinner, problems):
    """The spinner runs: its stacks, sampled at two moments, may differ."""
    bts = TN.parse_gdb_bt(gdb_text)
    ours = dict((t["native_thread_id"], t) for t in doc["threads"])
    if set(bts) != set(ours):
        problems.append("%s: threads differ: gdb %s, pyxray %s"
                        % (label, sorted(bts), sorted(ours)))
    agree = 0
    for lwp, t in ours.items():
        if lwp == spinner:
            continue
        names = [(f["function"], f["address"]) for f in t["frames"]
                 if f.get("native") and not f.get("inlined")
                 and f.get("function")]
        if not names:
            problems.append("%s: LWP %s: no native frames" % (label, lwp))
            continue
        bad, _ = TN.gdb_agrees(names, bts.get(lwp, []))
        if bad is not None:
            problems.append("%s: LWP %s: pyxray's %s not in gdb's "
                            "backtrace in order" % (label, lwp,
                                                    names[bad][0]))
        else:
            agree += 1
    print("sanity %s: %d of %d blocked threads: pyxray's native functions "
          "appear in gdb's backtrace in order" % (label, agree, len(ours) - 1),
          flush=True)


def bench_one(args, py, nthreads, rows, problems):
    version = SB.python_label(py, T.python_version(py))
    label = "%s/%d" % (version, nthreads)
    d = T.tmpdir()
    gap = SB.Gap(os.path.join(d, "gap"))
    fx = T.Fixture(py, threads=nthreads - 2, gap_file=os.path.join(d, "gap"),
                   lifetime=1800, timeout=60)
    try:
        real = len(T.thread_states(fx.pid))
        if real != nthreads:
            problems.append("%s: fixture has %d threads, not %d"
                            % (label, real, nthreads))
        idle = []
        for _ in range(5):
            gap.reset()
            time.sleep(0.1)
            idle.append(gap.read_ms())
        idle = statistics.median(idle)

        # --native of each binary alternating run by run, then Python only.
        natives = [("pyxray --native", args.pyxray)]
        if args.pyxray_baseline:
            natives.append(("pyxray baseline --native",
                            args.pyxray_baseline))
        got = dict((t, ([], [], [])) for t, _ in natives)
        for _ in range(args.n):
            for tool, binary in natives:
                with SB.own_cache(binary != args.pyxray):
                    walls, obs, outs = run_tool(
                        gap, [binary, "stacks", str(fx.pid), "--json",
                              "--native"], 1, "%s %s" % (label, tool),
                        problems)
                for acc, v in zip(got[tool], (walls, obs, outs)):
                    acc.extend(v)
        native_doc = None
        for tool, _ in natives:
            walls, obs, outs = got[tool]
            if not walls:
                continue
            docs = [T.Result([], 0, o, "", 0).json() for o in outs]
            rows.append(row(tool, version, nthreads, walls, obs, idle,
                            statistics.median(float(x["pause_ms"])
                                              for x in docs)))
            if native_doc is None:
                native_doc = docs[0]
        walls, obs, outs = run_tool(
            gap, [args.pyxray, "stacks", str(fx.pid), "--json"], args.n,
            "%s pyxray (Python only)" % label, problems)
        if walls:
            docs = [T.Result([], 0, o, "", 0).json() for o in outs]
            rows.append(row("pyxray (Python only)", version, nthreads, walls,
                            obs, idle, statistics.median(
                                float(x["pause_ms"]) for x in docs)))

        walls, obs, outs = run_tool(
            gap, TN.GDB_ARGV[:1] + ["-p", str(fx.pid)] + TN.GDB_ARGV[1:],
            args.gdb_n, "%s gdb" % label, problems)
        if walls and native_doc is not None:
            rows.append(row("gdb bt", version, nthreads, walls, obs, idle))
            sanity(label, native_doc, outs[0],
                   fx.thread(role="spinner")["native_thread_id"], problems)
    finally:
        left = T.wait_all_running(fx.pid, 1.0)
        if left:
            problems.append("%s: target threads left stopped: %s"
                            % (label, left))
        fx.stop()


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
                    "(repeatable); default 3.11 and 3.12")
    ap.add_argument("--threads", default="32",
                    help="comma-separated thread counts (all threads)")
    ap.add_argument("--n", type=int, default=20, help="pyxray repetitions")
    ap.add_argument("--gdb-n", type=int, default=5, help="gdb repetitions")
    args = ap.parse_args()
    args.pyxray = os.path.abspath(args.pyxray)
    T.require_pyxray(args.pyxray)
    if args.pyxray_baseline:
        args.pyxray_baseline = os.path.abspath(args.pyxray_baseline)
        T.require_pyxray(args.pyxray_baseline)
    counts = [int(x) for x in args.threads.split(",")]
    if min(counts) < 3:
        ap.error("a fixture has at least 3 threads (main, spinner, worker)")

    rows, problems = [], []
    for py in args.python or DEFAULT_PYTHONS:
        for n in counts:
            print("measuring %s with %d threads ..." % (py, n), flush=True)
            bench_one(args, py, n, rows, problems)

    gdb = dict(((r["python"], r["threads"]), r) for r in rows
               if r["tool"] == "gdb bt")
    base = dict(((r["python"], r["threads"]), r) for r in rows
                if r["tool"] == "pyxray baseline --native")
    print()
    print("| tool | python | threads | runs | wall median ms | wall p90 ms "
          "| pause self-reported ms | pause observed median (p90) ms "
          "| idle gap ms | speedup wall (pause) | new/baseline wall (pause) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        g = gdb.get((r["python"], r["threads"]))
        if r["tool"] == "pyxray --native" and g:
            sp = "%.1fx (%.0fx)" % (g["wall_med"] / r["wall_med"],
                                    g["pause_obs"] / max(r["pause_obs"],
                                                         1e-3))
        else:
            sp = "1x" if r["tool"] == "gdb bt" else "-"
        b = base.get((r["python"], r["threads"]))
        if r["tool"] == "pyxray --native" and b:
            ratio = "%.2f (%.2f)" % (r["wall_med"] / b["wall_med"],
                                     r["pause_obs"] / max(b["pause_obs"],
                                                          1e-3))
        else:
            ratio = "1" if r["tool"] == "pyxray baseline --native" else "-"
        print("| %s | %s | %d | %d | %s | %s | %s | %s (%s) | %s | %s | %s |"
              % (r["tool"], r["python"], r["threads"], r["n"],
                 SB.fmt(r["wall_med"]), SB.fmt(r["wall_p90"]),
                 SB.fmt(r["pause_self"]), SB.fmt(r["pause_obs"]),
                 SB.fmt(r["pause_obs_p90"]), SB.fmt(r["idle"]), sp, ratio))
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
