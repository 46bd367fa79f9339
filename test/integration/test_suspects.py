#!/usr/bin/env python3
"""pyxray suspects against fixtures/suspects_target.py, one Python.

Checks, against the fixture's in-process truth (the closure of each
holder's referents less what anything outside also holds, to a fixpoint;
its sys.getsizeof sum and count):
  - every holder is a suspect: the right object (address), type and words
    ("class attribute 'registry' of __main__.Handler", the lru_cache
    wrapper's cache, a mutable default, module globals, stored exceptions)
    and leak shape;
  - its retained bytes and objects within 3% of the truth, and the holders
    in the truth's order, biggest first;
  - the heap total, the pause, not partial, no thread left stopped;
  - the same suspects and types on one thread and on four (--jobs);
  - the text report names them; bad options are one-line usage errors.
Stripped Pythons (Debian's /usr/bin/python3) go through the built-in
layout tables.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402

TARGET = os.path.join(T.FIXTURES, "suspects_target.py")
TOLERANCE = 0.03


def start(python, timeout=90):
    truth = os.path.join(T.tmpdir(), "truth.json")
    return T.start_fixture([python, TARGET, truth, "--lifetime", "240"],
                           truth, timeout)


def close(a, b):
    return abs(a - b) <= TOLERANCE * max(a, b)


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    version = T.check_target_python(args.python)
    ck = T.Checker("suspects %s (%s)" % (args.python, version))
    p, logf, truth = start(args.python)
    try:
        pid = p.pid
        res = T.pyxray(args.pyxray, "suspects", pid, "--json", "--top", "30",
                       "--min-share", "0.5", timeout=120)
        if not ck.ok(res.rc == 0, "suspects --json exits 0", res.describe()):
            return ck.finish()
        doc = res.json()
        ck.ok(doc["pid"] == pid or doc["pid"] == truth["pid"], "pid")
        ck.ok(doc["pause_ms"] > 0, "pause reported (%.1f ms)"
              % doc["pause_ms"])
        # No list cut and no bad object: a running 3.11+ frame's data
        # on the thread's stack is not read as the frame's inline data.
        ck.ok(not doc["damaged_lists"] and doc["bad_objects"] == 0,
              "not partial (bad objects %d)" % doc["bad_objects"])
        ck.ok(doc["heap_bytes"] > sum(h["retained_bytes"]
                                      for h in truth["holders"]),
              "heap total %d above the holders' sum" % doc["heap_bytes"])
        ck.ok(T.wait_all_running(p.pid) == [], "no thread left stopped")
        by_addr = {s["holder"]["addr"]: (i, s)
                   for i, s in enumerate(doc["suspects"])}
        found = []
        for h in truth["holders"]:
            name = h["name"]
            hit = by_addr.get(h["addr"])
            if not ck.ok(hit is not None, "%s: a suspect at %s" %
                         (name, h["addr"]), json.dumps(
                             [(s["holder"], s["retained_bytes"])
                              for s in doc["suspects"]], indent=1)[:3000]):
                continue
            i, s = hit
            found.append((h["retained_bytes"], i, name))
            ck.ok(s["holder"]["type"] == h["type"], "%s: type %s"
                  % (name, s["holder"]["type"]))
            ck.ok(s["holder"]["description"] == h["description"],
                  "%s: described as %r" % (name, s["holder"]["description"]),
                  "want %r" % h["description"])
            ck.ok((s["pattern"] or "").startswith(h["pattern"]),
                  "%s: pattern %r" % (name, s["pattern"]),
                  "want %r..." % h["pattern"])
            ck.ok(close(s["retained_bytes"], h["retained_bytes"]),
                  "%s: retains %d bytes (truth %d)"
                  % (name, s["retained_bytes"], h["retained_bytes"]))
            ck.ok(close(s["retained_objects"], h["retained_objects"]),
                  "%s: retains %d objects (truth %d)"
                  % (name, s["retained_objects"], h["retained_objects"]))
            ck.ok(abs(s["share"] - s["retained_bytes"] / doc["heap_bytes"])
                  < 1e-4, "%s: share %.4f" % (name, s["share"]))
            ck.ok(s["path"] and s["root"], "%s: a path from a root (%s)"
                  % (name, s["root"]))
            ck.ok(s["holds"] and s["holds"][0]["count"] > 0,
                  "%s: what it holds (%s)" % (name, s["holds"][:2]))
        # biggest first, as the truth orders them
        order = [name for _, _, name in sorted(found, key=lambda f: f[1])]
        want = [name for _, _, name in sorted(found, key=lambda f: -f[0])]
        ck.ok(order == want, "holders in the truth's order: %s" % order,
              "want %s" % want)
        # The same report on one thread and on four (independent steps
        # run side by side; the placement left out: its own stop).
        same = []
        for jobs in ("1", "4"):
            res = T.run_shares(args.pyxray, jobs, "suspects", pid, "--json",
                               "--top", "30", "--min-share", "0.5",
                               "--no-placement")
            if ck.ok(res.rc == 0, "suspects --jobs %s exits 0" % jobs,
                     res.describe()):
                d = res.json()
                same.append([d[k] for k in ("objects", "edges", "roots",
                                            "inferred_edges", "heap_bytes",
                                            "unreachable", "suspects",
                                            "types")])
        ck.ok(len(same) == 2 and same[0] == same[1],
              "--jobs 1 and --jobs 4: the same suspects and types")
        # text
        res = T.pyxray(args.pyxray, "suspects", pid, "--min-share", "0.5",
                       timeout=120)
        ck.ok(res.rc == 0 and "Suspect 1:" in res.out and
              "class attribute 'registry' of __main__.Handler" in res.out and
              "mutable default argument" in res.out,
              "text report names the holders", res.describe())
        for bad in (["--min-share", "0"], ["--min-share", "x"],
                    ["--top", "0"], ["--jobs", "0"], []):
            argv = ["suspects"] + ([str(pid)] if bad else []) + bad
            res = T.pyxray(args.pyxray, *argv)
            ck.ok(res.rc == 2 and T.one_line_stderr(res) is None,
                  "usage error for %s" % " ".join(argv[1:]), res.describe())
        ck.ok(T.wait_all_running(p.pid) == [], "no thread left stopped")
    finally:
        T.kill_child(p)
        logf.close()
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
