#!/usr/bin/env python3
"""Benchmark: `pyxray census` against the in-process census tools.

  census_bench.py [--pyxray BIN] [--python PY ...] [--objects 5000000]
                  [--runs 3]

For every Python, one fixtures/census_target.py --bench N heap (about N
objects tracked by the GC: instances, their lists, dicts, tuples, __slots__
objects) is measured in the same run by:
  * pyxray census PID --json (and --tracked-only): wall time, the pause it
    reports, its peak RSS (getrusage of the child), best and median of runs;
  * the in-process peers, timed inside the fixture on the same heap, holding
    the GIL all along: collections.Counter(type(o).__name__ for o in
    gc.get_objects()), a sys.getsizeof pass over gc.get_objects(), and
    objgraph.show_most_common_types() where objgraph is installed (Debian's
    python3-objgraph, for /usr/bin/python3).
Prints a markdown table; see bench/README-census.md.  Use a Release build
without sanitizers.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SOURCE_DIR, "test", "integration"))
import pyxtest as T  # noqa: E402

TARGET = os.path.join(SOURCE_DIR, "fixtures", "census_target.py")
DEFAULT_PYTHONS = ["/root/.pyenv/versions/3.11.7/bin/python3.11",
                   "/root/.pyenv/versions/3.12.1/bin/python3.12",
                   "/usr/bin/python3"]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run_pyxray(argv):
    """(wall s, peak RSS KiB, rc, stdout, stderr) of one pyxray run; the
    peak RSS is this child's own (wait4), not the largest child's so far."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status) \
        if hasattr(os, "waitstatus_to_exitcode") else status >> 8
    p.stdout.close()
    p.stderr.close()
    return wall, ru.ru_maxrss, p.returncode, out.decode(), err.decode()


def bench_one(pyxray, py, nobj, runs):
    d = T.tmpdir()
    truth = os.path.join(d, "truth.json")
    log = open(os.path.join(d, "log"), "w")
    proc = T.spawn([py, TARGET, truth, "--bench", str(nobj),
                    "--lifetime", "600"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600
        while not os.path.exists(truth):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("fixture failed under %s" % py)
            time.sleep(0.2)
        with open(truth) as f:
            t = json.load(f)
        row = {"python": t["python_version"], "gc_objects": t["total_count"],
               "target_rss_mib": rss_kib(proc.pid) / 1024.0,
               "counter_s": t.get("counter_s"),
               "getsizeof_s": t.get("getsizeof_s"),
               "objgraph_s": t.get("objgraph_s")}
        for mode, extra in (("full", []), ("tracked", ["--tracked-only"])):
            walls, pauses, rss, walks = [], [], [], []
            for _ in range(runs):
                wall, maxrss, rc, out, _ = run_pyxray(
                    [pyxray, "census", str(proc.pid), "--json"] + extra)
                if rc != 0:
                    raise RuntimeError("pyxray census failed (%d)" % rc)
                doc = json.loads(out)
                walls.append(wall)
                pauses.append(doc["pause_ms"])
                walks.append(doc["walk_ms"])
                rss.append(maxrss / 1024.0)
                if mode == "full":
                    row["objects"] = doc["objects"]
                    row["copied_mib"] = doc["copied_bytes"] / 1048576.0
                    row["counted_gc"] = doc["gc_objects"]
            row[mode] = {"wall_best": min(walls),
                         "wall_median": statistics.median(walls),
                         "pause_best": min(pauses),
                         "pause_median": statistics.median(pauses),
                         "walk_median": statistics.median(walks),
                         "rss_mib": max(rss)}
        return row
    finally:
        T.kill_child(proc)
        log.close()


def fmt_s(v):
    return "–" if v is None else "%.2f s" % v


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pyxray", default=os.path.join(SOURCE_DIR, "build",
                                                     "pyxray"))
    ap.add_argument("--python", action="append")
    ap.add_argument("--objects", type=int, default=5000000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    pythons = args.python or [p for p in DEFAULT_PYTHONS if os.path.exists(p)]
    rows = []
    for py in pythons:
        T.log("# %s: building %d objects..." % (py, args.objects))
        rows.append(bench_one(os.path.abspath(args.pyxray), py, args.objects,
                              args.runs))
    print()
    print("| Python | GC objects | target RSS | pyxray census wall (best / median) "
          "| pause (best / median) | pyxray peak RSS | --tracked-only wall / pause "
          "| Counter(gc.get_objects) | getsizeof pass | objgraph |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        f, tr = r["full"], r["tracked"]
        print("| %s | %d (+%d reached) | %.0f MiB | %.2f / %.2f s | %.0f / %.0f ms "
              "| %.0f MiB | %.2f s / %.0f ms | %s | %s | %s |" % (
                  r["python"], r["counted_gc"], r["objects"] - r["counted_gc"],
                  r["target_rss_mib"], f["wall_best"], f["wall_median"],
                  f["pause_best"], f["pause_median"], f["rss_mib"],
                  tr["wall_median"], tr["pause_median"],
                  fmt_s(r["counter_s"]), fmt_s(r["getsizeof_s"]),
                  fmt_s(r["objgraph_s"])))
    print()
    print("Copied heap: %s" % ", ".join("%s %.0f MiB" % (r["python"],
                                        r["copied_mib"]) for r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
