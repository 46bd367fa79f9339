#!/usr/bin/env python3
"""Benchmark: `pyxray census` against the in-process census tools.

  census_bench.py [--pyxray BIN] [--pyxray-baseline BIN] [--python PY ...]
                  [--objects 5000000] [--runs 5] [--jobs N]

PY is an interpreter path or a test bed spec (root:DIR:NAME:container|
hostld, docs/test-bed.md): the fixture then runs in that mode and pyxray is
given its PID as the host sees it.

For every Python, one fixtures/census_target.py --bench N heap (about N
objects tracked by the GC: instances, their lists, dicts, tuples, __slots__
objects) is measured in the same run by:
  * pyxray census PID --json --no-placement (and --tracked-only; the RSS
    placement is a second stop for the allocators, not part of a census
    with sizes, which the peers are): wall time, the pause it
    reports, its peak RSS (getrusage of the child), best and median of runs;
  * the in-process peers, timed inside the fixture on the same heap, holding
    the GIL all along: collections.Counter(type(o).__name__ for o in
    gc.get_objects()), a sys.getsizeof pass over gc.get_objects(), a census
    with sizes (objects and bytes by type name, as pyxray gives them), and
    objgraph.show_most_common_types() where objgraph is installed (Debian's
    python3-objgraph, for /usr/bin/python3); each the median of 3 runs.
Below the table, each run's wall and the time its copy buffer took to fault
in (buffer_ms, before the stop), and the slowest run over the median with and
without it.
With --pyxray-baseline, a second pyxray binary (an older build) reads the
same heap, alternating run by run with --pyxray (in the order new, old, old,
new, ... so that neither always comes first after the other), and a second
table gives the ratios of the medians new/baseline.
Prints a markdown table; see bench/README.md.  Use a Release build without
sanitizers.
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
from stacks_bench import own_cache  # noqa: E402

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


def python_label(py, version):
    """'3.11.7', or '3.14.10 sid container' for a test bed spec."""
    spec = T.spec(py)
    if spec.kind != "root":
        return version
    return "%s %s %s" % (version, os.path.basename(spec.root), spec.mode)


def census_args(binary, jobs):
    """What census is given: --no-placement where the binary places the
    RSS (a second stop, for the allocators: not part of a census with
    sizes, which the peers are), --jobs where it knows it."""
    h = subprocess.run([binary, "census", "--help"], capture_output=True,
                       text=True).stdout
    args = []
    if "--no-placement" in h:
        args.append("--no-placement")
    if jobs and "--jobs" in h:
        args += ["--jobs", str(jobs)]
    return args


def bench_one(tools, py, nobj, runs, jobs=0):
    """{tool: row} for the pyxray binaries tools [(label, path)] on one
    heap; a row without "full" holds "cannot" (that binary cannot read
    this target)."""
    T.spec(py)  # a spec puts tmpdir() under /tmp, which the container shares
    truth = os.path.join(T.tmpdir(), "truth.json")
    proc, log, t = T.start_fixture([py, TARGET, truth, "--bench", str(nobj),
                                    "--lifetime", "900"], truth, 600,
                                   "fixture under %s" % py)
    try:
        common = {"python": python_label(py, t["python_version"]),
                  "truth_gc": t["total_count"],
                  "target_rss_mib": rss_kib(proc.pid) / 1024.0,
                  "counter_s": t.get("counter_s"),
                  "getsizeof_s": t.get("getsizeof_s"),
                  "census_s": t.get("census_s"),
                  "objgraph_s": t.get("objgraph_s")}
        rows = dict((label, dict(common, tool=label)) for label, _ in tools)
        first = True
        targs = dict((label, census_args(binary, jobs))
                     for label, binary in tools)
        for mode, extra in (("full", []), ("tracked", ["--tracked-only"])):
            m = dict((label, {"walls": [], "pauses": [], "rss": [],
                              "walks": [], "buffers": []})
                     for label, _ in tools)
            for i in range(runs):
                order = tools if i % 2 == 0 else tools[::-1]
                for label, binary in order:
                    row = rows[label]
                    if "cannot" in row:
                        continue
                    with own_cache(label != tools[0][0]):
                        wall, maxrss, rc, out, err = run_pyxray(
                            [binary, "census", str(proc.pid), "--json"]
                            + targs[label] + extra)
                    if rc != 0:
                        if label != tools[0][0]:
                            # An older build may not know this target.
                            row["cannot"] = (err.strip().splitlines() or
                                             ["exit %d" % rc])[-1]
                            continue
                        raise RuntimeError("pyxray census failed (%d): %s"
                                           % (rc, err))
                    doc = json.loads(out)
                    if first:
                        row["first_wall"] = wall
                        row["first_pause"] = doc["pause_ms"]
                        first = False
                    r = m[label]
                    r["walls"].append(wall)
                    r["pauses"].append(doc["pause_ms"])
                    r["walks"].append(doc["walk_ms"])
                    # Older binaries do not say (0: no figure).
                    r["buffers"].append(doc.get("buffer_ms", 0.0))
                    r["rss"].append(maxrss / 1024.0)
                    if mode == "full":
                        row["objects"] = doc["objects"]
                        row["copied_mib"] = doc["copied_bytes"] / 1048576.0
                        row["counted_gc"] = doc["gc_objects"]
                        row["partial"] = doc.get("partial", False)
            for label, _ in tools:
                r = m[label]
                if not r["walls"]:
                    continue
                rows[label][mode] = {
                    "wall_best": min(r["walls"]),
                    "wall_median": statistics.median(r["walls"]),
                    "wall_max": max(r["walls"]),
                    "walls": r["walls"],
                    "buffers": r["buffers"],
                    "pause_best": min(r["pauses"]),
                    "pause_median": statistics.median(r["pauses"]),
                    "walk_median": statistics.median(r["walks"]),
                    "rss_mib": max(r["rss"])}
        return [rows[label] for label, _ in tools]
    finally:
        T.kill_child(proc)
        log.close()


def slowest_buffer(f):
    """(buffer_ms of the slowest run, median buffer_ms)."""
    i = f["walls"].index(max(f["walls"]))
    return f["buffers"][i], statistics.median(f["buffers"])


def without_buffer(f):
    """The slowest run over the median with each run's copy buffer faults
    (buffer_ms: the time the kernel takes to find the pages, which on a
    virtual machine depends on what its host has taken back) left out."""
    rest = [w - b / 1000.0 for w, b in zip(f["walls"], f["buffers"])]
    return max(rest) / statistics.median(rest) - 1


def fmt_s(v):
    return "–" if v is None else "%.2f s" % v


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pyxray", default=os.path.join(SOURCE_DIR, "build",
                                                     "pyxray"))
    ap.add_argument("--pyxray-baseline", metavar="BIN",
                    help="an older pyxray measured on the same heaps, "
                    "alternating with --pyxray")
    ap.add_argument("--python", action="append",
                    help="target Python: a path or a test bed spec "
                    "root:DIR:NAME:MODE (repeatable)")
    ap.add_argument("--objects", type=int, default=5000000)
    ap.add_argument("--runs", type=int, default=5,
                    help="runs of each binary, full and --tracked-only")
    ap.add_argument("--jobs", type=int, default=0,
                    help="census --jobs N (default: the binary's own)")
    args = ap.parse_args()
    pythons = args.python or [p for p in DEFAULT_PYTHONS if os.path.exists(p)]
    tools = [("pyxray", os.path.abspath(args.pyxray))]
    if args.pyxray_baseline:
        tools.append(("pyxray baseline",
                      os.path.abspath(args.pyxray_baseline)))
    rows = []
    for py in pythons:
        T.log("# %s: building %d objects..." % (py, args.objects))
        rows.extend(bench_one(tools, py, args.objects, args.runs,
                              args.jobs))
    print()
    print("| tool | Python | GC objects (fixture's gc.get_objects) "
          "| target RSS | pyxray census wall (best / median) "
          "| pause (best / median) | pyxray peak RSS "
          "| --tracked-only wall / pause | Counter(gc.get_objects) "
          "| getsizeof pass | census with sizes | objgraph |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "full" not in r:
            print("| %s | %s | cannot read this target (%s) | | | | | | | | | |"
                  % (r["tool"], r["python"],
                     r.get("cannot", "?").replace("|", "/")))
            continue
        f, tr = r["full"], r["tracked"]
        print("| %s | %s | %d (%d) (+%d reached)%s | %.0f MiB | %.2f / %.2f s "
              "| %.0f / %.0f ms | %.0f MiB | %.2f s / %.0f ms | %s | %s | %s "
              "| %s |"
              % (r["tool"], r["python"], r["counted_gc"], r["truth_gc"],
                 r["objects"] - r["counted_gc"],
                 " partial" if r["partial"] else "",
                 r["target_rss_mib"], f["wall_best"], f["wall_median"],
                 f["pause_best"], f["pause_median"], f["rss_mib"],
                 tr["wall_median"], tr["pause_median"],
                 fmt_s(r["counter_s"]), fmt_s(r["getsizeof_s"]),
                 fmt_s(r["census_s"]), fmt_s(r["objgraph_s"])))
    print()
    print("First census of each heap (cold): %s" % ", ".join(
        "%s %s %.2f s / %.0f ms" % (r["python"], r["tool"], r["first_wall"],
                                    r["first_pause"])
        for r in rows if "first_wall" in r))
    print("Walk after the resume (walk_ms), median, full / --tracked-only: "
          "%s" % ", ".join(
              "%s %s %.0f / %.0f ms" % (r["python"], r["tool"],
                                        r["full"]["walk_median"],
                                        r["tracked"]["walk_median"])
              for r in rows if "full" in r))
    print("Slowest run over the median (census wall): %s" % ", ".join(
        "%s %s %+.0f%%" % (r["python"], r["tool"],
                           100.0 * (r["full"]["wall_max"] /
                                    r["full"]["wall_median"] - 1))
        for r in rows if "full" in r))
    print("The copy buffer's faults (buffer_ms, before the stop) in that "
          "run / median: %s" % ", ".join(
              "%s %s %.0f / %.0f ms" % ((r["python"], r["tool"])
                                        + slowest_buffer(r["full"]))
              for r in rows if "full" in r))
    print("Slowest run over the median, the buffer's faults left out "
          "(wall - buffer_ms): %s" % ", ".join(
              "%s %s %+.0f%%" % (r["python"], r["tool"],
                                 100.0 * without_buffer(r["full"]))
              for r in rows if "full" in r))
    print("Every run, census wall s / buffer ms: %s" % "; ".join(
        "%s %s %s" % (r["python"], r["tool"], " ".join(
            "%.2f/%.0f" % (w, b)
            for w, b in zip(r["full"]["walls"], r["full"]["buffers"])))
        for r in rows if "full" in r))
    print("Census wall median / in-process census with sizes, getsizeof "
          "pass: %s" % ", ".join(
              "%s %s %.2f, %.2f" % (r["python"], r["tool"],
                                    r["full"]["wall_median"] /
                                    (r.get("census_s") or float("nan")),
                                    r["full"]["wall_median"] /
                                    r["getsizeof_s"])
              for r in rows if "full" in r and r.get("getsizeof_s")))
    print("Copied heap: %s" % ", ".join(
        "%s %s %.0f MiB" % (r["python"], r["tool"], r["copied_mib"])
        for r in rows if "full" in r))
    if len(tools) > 1:
        new = dict((r["python"], r) for r in rows if r["tool"] == "pyxray")
        print()
        print("| Python | new/baseline: census wall median | pause median "
              "| peak RSS | --tracked-only wall | --tracked-only pause |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            n = new.get(r["python"])
            if r["tool"] == "pyxray" or "full" not in r or n is None:
                continue
            print("| %s | %.2f | %.2f | %.2f | %.2f | %.2f |" % (
                r["python"],
                n["full"]["wall_median"] / r["full"]["wall_median"],
                n["full"]["pause_median"] / r["full"]["pause_median"],
                n["full"]["rss_mib"] / r["full"]["rss_mib"],
                n["tracked"]["wall_median"] / r["tracked"]["wall_median"],
                n["tracked"]["pause_median"] / r["tracked"]["pause_median"]))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        T.cleanup()
