#!/usr/bin/env python3
"""Benchmark: `pyxray census` and `pyxray refs` on a core file beside the
same on the live process (docs/core.md).

  core_bench.py [--pyxray BIN] [--python PY] [--objects 5000000] [--runs 3]
                [--type __main__.Plain] [--core-dir DIR] [--keep-core]

One fixtures/census_target.py --bench N heap (as bench/census_bench.py
starts it) is dumped with gdb's gcore (its wall time and the core's size
are measured), then `pyxray census --json` and `pyxray refs --type T
--json` run on the core and on the live process, alternating run by run
(core, live, live, core, ...: neither always comes first), RUNS times each:
wall time, user CPU time and peak RSS (wait4 of the child), best and
median.  The core is deleted at the end (it is about as large as the
target's RSS) unless --keep-core.  Prints a markdown table; see
bench/README.md.  Use a Release build without sanitizers.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SOURCE_DIR, "test", "integration"))
import pyxtest as T  # noqa: E402
sys.path.insert(0, HERE)
from census_bench import TARGET, rss_kib  # noqa: E402


def run_timed(argv):
    """(wall s, stdout, stderr, rc) of one child (gcore)."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate()
    wall = time.monotonic() - t0
    return wall, out.decode(), err.decode(), p.returncode


def run_pyxray(argv):
    """(wall s, user s, peak RSS KiB, rc, stdout, stderr) of one pyxray
    run; user time and peak RSS are this child's own (wait4)."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    p.stdout.close()
    p.stderr.close()
    rc = os.waitstatus_to_exitcode(status)
    return wall, ru.ru_utime, ru.ru_maxrss, rc, out.decode(), err.decode()


def med(v):
    return statistics.median(v) if v else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pyxray", default=os.path.join(SOURCE_DIR, "build",
                                                     "pyxray"))
    ap.add_argument("--python",
                    default="/root/.pyenv/versions/3.12.1/bin/python3.12")
    ap.add_argument("--objects", type=int, default=5000000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--type", default="__main__.Plain",
                    help="the type refs looks for (the fixture's)")
    ap.add_argument("--core-dir", default="/var/tmp",
                    help="where the core is written (needs ~RSS free)")
    ap.add_argument("--keep-core", action="store_true")
    a = ap.parse_args()
    if not shutil.which("gcore"):
        print("core_bench: gcore (gdb) not found", file=sys.stderr)
        return 77

    truth = os.path.join(T.tmpdir(), "truth.json")
    proc, log, t = T.start_fixture([a.python, TARGET, truth, "--bench",
                                    str(a.objects), "--lifetime", "1800"],
                                   truth, 900, "fixture under %s" % a.python)
    prefix = os.path.join(a.core_dir, "pyxray-core-bench")
    core = "%s.%d" % (prefix, proc.pid)
    try:
        target_rss = rss_kib(proc.pid) / 1024.0
        gw, _, gerr, grc = run_timed(["gcore", "-o", prefix, str(proc.pid)])
        if grc != 0 or not os.path.exists(core):
            raise RuntimeError("gcore failed (%d): %s" % (grc, gerr[-400:]))
        core_mib = os.path.getsize(core) / 1048576.0
        cmds = {"census": ["census", "{}", "--json"],
                "refs": ["refs", "{}", "--type", a.type, "--json"]}
        res = {}
        for name, argv in cmds.items():
            for where in ("core", "live"):
                res[(name, where)] = {"wall": [], "user": [], "rss": []}
            for i in range(a.runs):
                order = ("core", "live") if i % 2 == 0 else ("live", "core")
                for where in order:
                    arg = core if where == "core" else str(proc.pid)
                    full = [a.pyxray] + [arg if x == "{}" else x
                                         for x in argv]
                    wall, user, maxrss, rc, out, err = run_pyxray(full)
                    if rc != 0:
                        raise RuntimeError("%s failed (%d): %s"
                                           % (" ".join(full), rc, err))
                    doc = json.loads(out)
                    r = res[(name, where)]
                    r["wall"].append(wall)
                    r["user"].append(user)
                    r["rss"].append(maxrss / 1024.0)
                    if name == "census":
                        r["objects"] = doc.get("objects")
                    else:
                        r["targets"] = doc.get("targets")
                    r["partial"] = doc.get("partial", False)
        print("python %s, %d objects asked (%d tracked by the GC), target "
              "RSS %.0f MiB" % (t["python_version"], a.objects,
                                t["total_count"], target_rss))
        print("gcore: %.1f s, core %.0f MiB" % (gw, core_mib))
        print()
        print("| command | target | wall best | wall median | user median "
              "| peak RSS | result |")
        print("|---|---|---|---|---|---|---|")
        for (name, where), r in res.items():
            what = ("%s objects" % r.get("objects") if name == "census" else
                    "%s targets" % r.get("targets"))
            if r["partial"]:
                what += " (partial)"
            print("| %s | %s | %.2f s | %.2f s | %.2f s | %.0f MiB | %s |"
                  % (name if name == "census" else "refs --type " + a.type,
                     where, min(r["wall"]), med(r["wall"]), med(r["user"]),
                     max(r["rss"]), what))
        return 0
    finally:
        T.kill_child(proc)
        log.close()
        if not a.keep_core and os.path.exists(core):
            os.unlink(core)


if __name__ == "__main__":
    sys.exit(main())
