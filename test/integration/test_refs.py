#!/usr/bin/env python3
"""pyxray refs against fixtures/refs_target.py, one Python.

Checks, against the fixture's own truth:
  - each known leak: `refs --type` names the true holder in its top group
    (the function's __defaults__, the lru_cache wrapper, the class
    attribute, the frame local kept by a traceback, the observer list of
    bound methods, a running frame's local) and counts the leaked objects
    exactly; cycles piled up with gc disabled are all "unreachable";
  - edge truth: for sample objects, every referrer gc.get_referrers() found
    is among pyxray's direct referrers (refs --addr --json);
  - text and --dot output; bad input (unknown type with suggestions, an
    address that is not an object): one-line errors, exit 2;
  - locals of suspended generators (not those of finished ones); what a
    generator suspended in yield from, a coroutine suspended in await,
    holds on its value stack;
  - an untracked type (bytearray) held by attributes;
  - objects gc.DEBUG_SAVEALL kept in gc.garbage: held by gc.garbage;
  - no thread is left stopped.
Stripped Pythons (Debian's /usr/bin/python3) go through the built-in
layout tables.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402

TARGET = os.path.join(T.FIXTURES, "refs_target.py")


def start(python, timeout=60):
    d = T.tmpdir()
    truth = os.path.join(d, "truth.json")
    return T.start_fixture([python, TARGET, truth, "--lifetime", "240"],
                           truth, timeout) + (d,)


def steps(group):
    return [(s["type"], s["holder"], s["edge"], s["inferred"])
            for s in group["path"]]


def holder_ok(name, g, version):
    """Whether the top group's path names the true holder."""
    p = steps(g)
    if name == "MutDefault":
        return any(e == "__defaults__" and h == "function remember"
                   for _, h, e, _ in p)
    if name == "LruResult":
        return p and p[0][2] == "dict value [<int key>]" and len(p) > 1 and \
            p[1][0] == "functools._lru_cache_wrapper" and p[1][2] == "cache"
    if name == "ClassItem":
        return any(p[i][2] == "dict value ['items']" and
                   p[i + 1][2] == "__dict__" and
                   p[i + 1][1] == "class __main__.Registry"
                   for i in range(len(p) - 1))
    if name == "BigLocal":
        return p and p[0][0] == "frame" and p[0][2] == "local 'big'" and \
            any(e == "__traceback__" for _, _, e, _ in p)
    if name == "Listener":
        return p and p[0][0] == "method" and p[0][2] == "__self__" and \
            len(p) > 1 and p[1][0] == "list" and \
            any(e == "dict value ['OBSERVERS']" for _, _, e, _ in p)
    if name == "FrameHeld":
        # the running frame's local: a root (3.11+ frames, and 3.8-3.10
        # frames the GC does not track), or an edge of a tracked frame
        return "local 'local_holder' of main()" in g["root"] or \
            any(t == "frame" and e == "local 'local_holder'"
                for t, _, e, _ in p)
    if name == "GenLocal":
        return p and p[0][2] == "local 'x'" and \
            any(t == "generator" for t, _, _, _ in p) and \
            any(e == "dict value ['GENS']" for _, _, e, _ in p)
    if name == "Delegated":
        # on the value stack of the generator's frame (3.11+: embedded;
        # 3.8-3.10: its gi_frame)
        return p and p[0][2] == "value stack" and \
            any(t == "generator" for t, _, _, _ in p) and \
            any(e == "dict value ['DELEGATING']" for _, _, e, _ in p)
    if name == "Awaited":
        return any(t in ("coroutine", "frame") and e == "value stack"
                   for t, _, e, _ in p) and \
            any(t == "coroutine" for t, _, _, _ in p) and \
            any(e == "dict value ['CORO']" for _, _, e, _ in p)
    if name == "Saved":
        return "gc.garbage" in g["root"] and p and p[0][0] == "list"
    if name == "Repeated":
        return p and p[0][0] == "itertools.repeat" and p[0][3] and \
            g["inferred"] and \
            any(e == "dict value ['REPEATERS']" for _, _, e, _ in p)
    return False


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    version = T.check_target_python(args.python)
    ck = T.Checker("refs %s (%s)" % (args.python, version))
    p, logf, truth, d = start(args.python)
    try:
        pid = p.pid
        counts = truth["counts"]
        for name in ("MutDefault", "LruResult", "ClassItem", "BigLocal",
                     "Listener", "FrameHeld", "Repeated", "Saved", "GenLocal",
                     "Delegated", "Awaited", "CycleNode"):
            res = T.pyxray(args.pyxray, "refs", pid, "--type",
                           "__main__." + name, "--json", timeout=120)
            if not ck.ok(res.rc == 0, "refs --type %s exits 0" % name,
                         res.describe()):
                continue
            doc = res.json()
            ck.ok(doc["targets"] == counts[name], "%s: %d targets (truth %d)"
                  % (name, doc["targets"], counts[name]))
            # a healthy heap is read whole (the keys: test_damaged.py)
            ck.ok(not doc.get("partial") and not doc.get("damaged_lists") and
                  not doc.get("bad_objects"), "%s: not partial" % name,
                  "partial %r damaged_lists %r bad_objects %r"
                  % (doc.get("partial"), doc.get("damaged_lists"),
                     doc.get("bad_objects")))
            if name == "CycleNode":
                ck.ok(doc["unreachable"] == counts[name] and not doc["groups"],
                      "%s: all %d unreachable (got %d, %d groups)"
                      % (name, counts[name], doc["unreachable"],
                         len(doc["groups"])), res.out[:3000])
                continue
            if name == "Saved":
                ck.ok(doc["gc_garbage"] >= counts[name], "gc.garbage: %d "
                      "objects (at least %d)" % (doc["gc_garbage"],
                                                 counts[name]))
            g = doc["groups"][0] if doc["groups"] else None
            ck.ok(g is not None and g["count"] == counts[name] and
                  doc["unreachable"] == 0 and holder_ok(name, g, version),
                  "%s: top group of %d names the holder" % (name, counts[name]),
                  json.dumps(doc["groups"][:2], indent=1)[:3000])
        # an untracked type: the bytearrays BigLocal objects hold
        res = T.pyxray(args.pyxray, "refs", pid, "--type", "bytearray",
                       "--json", timeout=120)
        ok = res.rc == 0
        if ok:
            doc = res.json()
            g = doc["groups"][0] if doc["groups"] else {"path": [],
                                                         "count": 0}
            ok = doc["targets"] >= counts["BigLocal"] and \
                g["count"] == counts["BigLocal"] and \
                any(e in ("attribute 'payload'", "dict value ['payload']")
                    for _, _, e, _ in steps(g)) and \
                all(k in doc for k in ("pid", "target", "groups",
                                       "unreachable")) and \
                all(k in st for st in g["path"] for k in ("type", "edge",
                                                          "addr"))
        ck.ok(ok, "--type bytearray (untracked): BigLocal's payloads, by "
              "attribute; JSON keys", res.describe())
        # The rows on one thread and on three shares: the same answer
        # (the graph's ids, edges and groups), for a tracked type and an
        # untracked one (objects the shares create as they meet them).
        for t in ("__main__.BigLocal", "bytearray", "str"):
            docs = []
            for jobs in ("1", "3"):
                res = T.run_shares(args.pyxray, jobs, "refs", pid, "--type",
                                 t, "--json")
                if ck.ok(res.rc == 0, "refs --type %s --jobs %s exits 0"
                         % (t, jobs), res.describe()):
                    doc = res.json()
                    for k in ("pause_ms", "walk_ms", "retained_ms"):
                        doc.pop(k, None)
                    docs.append(doc)
            ck.ok(len(docs) == 2 and docs[0] == docs[1],
                  "refs --type %s: --jobs 1 and --jobs 3 the same" % t)
        # text: the class attribute, merged into one line
        res = T.pyxray(args.pyxray, "refs", pid, "--type", "__main__.ClassItem",
                       "--dot", os.path.join(d, "g.dot"), timeout=120)
        ck.ok(res.rc == 0 and "43 x __main__.ClassItem" in res.out and
              "class attribute 'items' of  class __main__.Registry" in res.out
              and "global 'Registry' of  module __main__" in res.out and
              "Paused the target for" in res.out,
              "text: count, class attribute, global, pause", res.describe())
        with open(os.path.join(d, "g.dot")) as f:
            dot = f.read()
        ck.ok(dot.startswith("digraph") and "class __main__.Registry" in dot,
              "--dot writes a Graphviz graph")
        # edge truth
        bad = []
        for s in truth["samples"]:
            res = T.pyxray(args.pyxray, "refs", pid, "--addr", hex(s["id"]),
                           "--json", timeout=120)
            if res.rc != 0:
                bad.append("%s %s: %s" % (s["type"], hex(s["id"]),
                                          res.describe()))
                continue
            got = set(int(r["addr"], 16) for r in res.json()["referrers"])
            missing = [(hex(i), t) for i, t in zip(s["referrers"],
                                                   s["referrer_types"])
                       if i not in got]
            if missing:
                bad.append("%s %s: missing referrers %s" % (
                    s["type"], hex(s["id"]), missing))
        ck.ok(not bad, "edge truth: gc.get_referrers of %d samples all found"
              % len(truth["samples"]), "\n".join(bad))
        # bad input
        res = T.pyxray(args.pyxray, "refs", pid, "--type", "MutDefalt")
        ck.ok(res.rc == 2 and T.one_line_stderr(res) is None and
              "__main__.MutDefault" in res.err, "unknown type: exit 2, "
              "suggests __main__.MutDefault", res.describe())
        for addr in ("0x10", hex(truth["samples"][0]["id"] + 8)):
            res = T.pyxray(args.pyxray, "refs", pid, "--addr", addr)
            ck.ok(res.rc == 2 and T.one_line_stderr(res) is None and
                  "not an object" in res.err, "--addr %s: not an object, "
                  "exit 2" % addr, res.describe())
        res = T.pyxray(args.pyxray, "refs", pid)
        ck.ok(res.rc == 2 and T.one_line_stderr(res) is None,
              "neither --type nor --addr: exit 2", res.describe())
        ck.ok(p.poll() is None and not T.wait_all_running(pid),
              "the target runs on, no thread left stopped")
    finally:
        T.kill_child(p)
        logf.close()
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
