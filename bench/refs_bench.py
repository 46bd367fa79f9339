#!/usr/bin/env python3
"""Benchmark: `pyxray refs --type X` against objgraph.find_backref_chain.

  refs_bench.py [--pyxray BIN] [--pyxray-baseline BIN] [--python PY ...]
                [--objects 5000000] [--runs 3]

For every Python, the 5-million-object heap of bench/census_bench.py
(fixtures/census_target.py's build_bench: instances, their lists, dicts,
tuples, __slots__ objects) is built in a target that then measures, in
process and holding the GIL, objgraph.find_backref_chain(one Plain object,
objgraph.is_proper_module) and one gc.get_referrers() call, where objgraph
is installed (Debian's python3-objgraph, for /usr/bin/python3).  On the same
heap: `pyxray refs PID --type census_target.Plain --json` (every retention
group of ~900 k objects) and `pyxray census PID --json` for the pause to
compare with: wall, pause, graph build, peak RSS (getrusage of the child);
then `pyxray suspects PID --json` (the whole graph: every object a node,
dominators, retained sizes) and, where every binary has it, `pyxray refs
PID --type census_target.Plain --retained --json`; a last table puts them
beside the census (issue #18: suspects within 2x its wall, and no more peak
memory than refs).
With --pyxray-baseline, an older pyxray build runs the same commands on the
same heap, alternating run by run, and a second table gives the ratios of
the medians new/baseline.  PY may be a test bed spec (root:DIR:NAME:MODE).
Prints a markdown table (docs/refs.md).  Use a build without sanitizers.
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
sys.path.insert(0, HERE)
from census_bench import DEFAULT_PYTHONS, fmt_s, run_pyxray, \
    python_label, own_cache  # noqa: E402


# Runs in the target: census_target's bench heap, the in-process peers,
# then idles.  The classes are census_target.Plain etc.
TARGET_CODE = r'''
import gc, json, os, sys, time
sys.path.insert(0, sys.argv[1])
import census_target as C
n, path = int(sys.argv[2]), sys.argv[3]
C.build_bench(n)
gc.collect()
out = {"pid": os.getpid(), "python_version": "%d.%d.%d" % sys.version_info[:3],
       "gc_objects": len(gc.get_objects()), "plain": len(C.KEEP[0]),
       "objgraph_s": None, "get_referrers_s": None}
obj = C.KEEP[0][len(C.KEEP[0]) // 2]
t0 = time.perf_counter()
gc.get_referrers(obj)
out["get_referrers_s"] = time.perf_counter() - t0
try:
    import objgraph
except ImportError:
    objgraph = None
if objgraph:
    t0 = time.perf_counter()
    chain = objgraph.find_backref_chain(obj, objgraph.is_proper_module)
    out["objgraph_s"] = time.perf_counter() - t0
    out["objgraph_chain"] = len(chain)
    del chain
del obj
with open(path + ".tmp", "w") as f:
    json.dump(out, f)
os.rename(path + ".tmp", path)
time.sleep(600)
'''


def bench_one(tools, py, nobj, runs):
    """One row per pyxray binary of tools [(label, path)], same heap."""
    T.spec(py)  # a spec puts tmpdir() under /tmp, which the container shares
    d = T.tmpdir()
    truth = os.path.join(d, "truth.json")
    proc = T.spawn([py, "-c", TARGET_CODE, os.path.join(SOURCE_DIR, "fixtures"),
                    str(nobj), truth], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 900
        while not os.path.exists(truth):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("fixture failed under %s" % py)
            time.sleep(0.2)
        with open(truth) as f:
            t = json.load(f)
        t["python_version"] = python_label(py, t["python_version"])
        rows = dict((label, dict(t, tool=label)) for label, _ in tools)
        modes = [
            ("refs", ["refs", str(proc.pid), "--type", "census_target.Plain",
                      "--json"]),
            ("census", ["census", str(proc.pid), "--json", "--top", "1"]),
            ("suspects", ["suspects", str(proc.pid), "--json"])]
        if all(has_option(b, "refs", "--retained") for _, b in tools):
            modes.append(("retained", ["refs", str(proc.pid), "--type",
                                       "census_target.Plain", "--retained",
                                       "--json"]))
        for name, args in modes:
            m = dict((label, {"walls": [], "pauses": [], "walks": [],
                              "peaks": []}) for label, _ in tools)
            for i in range(runs):
                for label, binary in (tools if i % 2 == 0 else tools[::-1]):
                    with own_cache(label != tools[0][0]):
                        wall, peak, rc, out, err = run_pyxray([binary] + args)
                    if rc != 0:
                        raise RuntimeError("%s %s failed (%d): %s"
                                           % (label, name, rc, err))
                    doc = json.loads(out)
                    r = m[label]
                    r["walls"].append(wall)
                    r["pauses"].append(doc["pause_ms"])
                    r["walks"].append(doc["walk_ms"])
                    r["peaks"].append(peak / 1024.0)  # KiB -> MiB
                    if name == "refs":
                        row = rows[label]
                        row["targets"] = doc["targets"]
                        row["objects"] = doc["objects"]
                        row["edges"] = doc["edges"]
                        row["groups"] = doc["ngroups"]
            for label, _ in tools:
                r = m[label]
                rows[label][name] = {"wall": statistics.median(r["walls"]),
                                     "wall_best": min(r["walls"]),
                                     "pause": statistics.median(r["pauses"]),
                                     "walk": statistics.median(r["walks"]),
                                     "rss": max(r["peaks"])}
        return [rows[label] for label, _ in tools]
    finally:
        T.kill_child(proc)


def has_option(binary, command, option):
    h = subprocess.run([binary, command, "--help"], capture_output=True,
                       text=True).stdout
    return option in h


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pyxray", default=os.path.join(SOURCE_DIR, "build",
                                                     "pyxray"))
    ap.add_argument("--pyxray-baseline", metavar="BIN",
                    help="an older pyxray measured on the same heaps, "
                    "alternating with --pyxray")
    ap.add_argument("--python", action="append")
    ap.add_argument("--objects", type=int, default=5000000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    pythons = args.python or [p for p in DEFAULT_PYTHONS if os.path.exists(p)]
    tools = [("pyxray", os.path.abspath(args.pyxray))]
    if args.pyxray_baseline:
        tools.append(("pyxray baseline",
                      os.path.abspath(args.pyxray_baseline)))
    rows = []
    for py in pythons:
        T.log("# %s: building %d objects..." % (py, args.objects))
        rows.extend(bench_one(tools, py, args.objects, args.runs))
    print()
    print("| tool | Python | GC objects | graph (nodes / edges) "
          "| targets / groups | refs wall (median / best) | refs pause "
          "| graph+search | census pause | peak RSS (refs) "
          "| objgraph.find_backref_chain | gc.get_referrers |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        f, c = r["refs"], r["census"]
        print("| %s | %s | %d | %d / %d | %d / %d | %.2f / %.2f s | %.0f ms | "
              "%.2f s | %.0f ms | %.0f MiB | %s | %s |" % (
                  r["tool"], r["python_version"], r["gc_objects"],
                  r["objects"], r["edges"], r["targets"], r["groups"],
                  f["wall"], f["wall_best"], f["pause"], f["walk"] / 1000.0,
                  c["pause"], f["rss"], fmt_s(r["objgraph_s"]),
                  fmt_s(r["get_referrers_s"])))
    print()
    print("| tool | Python | suspects wall (median / best) | suspects "
          "graph+dominators | peak RSS (suspects) | suspects / census wall "
          "| refs --retained wall | peak RSS (refs --retained) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        s, c, t = r["suspects"], r["census"], r.get("retained")
        print("| %s | %s | %.2f / %.2f s | %.2f s | %.0f MiB | %.2f | %s | %s |"
              % (r["tool"], r["python_version"], s["wall"], s["wall_best"],
                 s["walk"] / 1000.0, s["rss"], s["wall"] / c["wall"],
                 "%.2f s" % t["wall"] if t else "-",
                 "%.0f MiB" % t["rss"] if t else "-"))
    if len(tools) > 1:
        new = dict((r["python_version"], r) for r in rows
                   if r["tool"] == "pyxray")
        print()
        print("| Python | new/baseline: refs wall median | refs pause "
              "| graph+search | peak RSS (refs) | census pause "
              "| suspects wall | peak RSS (suspects) |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            n = new.get(r["python_version"])
            if r["tool"] == "pyxray" or n is None:
                continue
            print("| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |" % (
                r["python_version"], n["refs"]["wall"] / r["refs"]["wall"],
                n["refs"]["pause"] / r["refs"]["pause"],
                n["refs"]["walk"] / r["refs"]["walk"],
                n["refs"]["rss"] / r["refs"]["rss"],
                n["census"]["pause"] / r["census"]["pause"],
                n["suspects"]["wall"] / r["suspects"]["wall"],
                n["suspects"]["rss"] / r["suspects"]["rss"]))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        T.cleanup()
