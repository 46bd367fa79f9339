#!/usr/bin/env python3
"""pyxray refs --retained against the target's in-process truth, one Python.

The target (TARGET_CODE below, written to a file and run by the Python
under test) holds instances of __main__.Item in three groups of retention
paths:
  list   300 items of a module-level list (HOLD_LIST); items 2k and 2k+1
         share one list (their 'shared' attribute): kept alive by the pair,
         by neither item alone, so no item's retained set has it;
  dict   200 items as the values of a module-level dict (HOLD_DICT);
  child  100 items, each the 'child' of one of the first 100 list items:
         inside their parents' retained sets;
and 50 unreachable items (self-cycles, the collector off); and 10 victims
whose ob_refcnt reads as the node id pyxray writes in its heap copy.
The truth of an object's retained set, as test_suspects' fixture defines
it: the closure of gc.get_referents() from it, less every object that some
GC object outside the set also refers to, to a fixpoint.  A group retains
the union of its items' sets (each object once); all the items together
the union of every group's (the children's sets are in their parents').
Checks: each group's retained bytes and objects within 3% of the truth,
the totals too (not the sum of the groups), the unreachable items counted
and retaining nothing, the text names what they retain, the JSON without
--retained has no retained key, the victims found (a forged id is not
trusted), no thread left stopped.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402

TOLERANCE = 0.03

TARGET_CODE = r'''
import gc, json, os, sys, time


class Item(object):
    def __init__(self, i, payload):
        self.i = i + 100000
        self.payload = payload
        self.child = None
        self.shared = None


class Victim(object):
    pass


HOLD_LIST = []
HOLD_DICT = {}
VICTIMS = []


def build():
    gc.disable()
    pair = None
    for i in range(300):
        it = Item(i, ["list item %d part %d " % (i, j) * 3 for j in range(5)])
        if i % 2 == 0:
            pair = ["shared by a pair %d " % i * 4, bytearray(200 + i)]
        it.shared = pair
        if i < 100:
            it.child = Item(1000 + i, [bytes(300 + i)])
        HOLD_LIST.append(it)
    for i in range(200):
        HOLD_DICT["key %d" % i] = Item(2000 + i, {"blob": bytes(150 + i),
                                                  "n": float(i)})
    for i in range(50):
        it = Item(3000 + i, ["garbage %d" % i * 5])
        it.child = it
    del it, pair


def referents(o):
    # a dict whose keys are all str does not visit them, yet holds them
    r = gc.get_referents(o)
    if issubclass(type(o), dict):
        r = list(o.keys()) + r
    return r


def truth(groups):
    """Each group's retained set: the union of its items'.  An item's:
    the closure of referents() from it, less every object that a GC object
    outside the set refers to, to a fixpoint.  What the roots (sys.modules,
    the sys and builtins dicts, the running frames) reach without passing
    through an item is outside from the start (else a class, through its
    module, would take the whole heap in), and so is an immortal (held by
    the interpreter).  The truth's own lists are no referrers."""
    import builtins
    objs = gc.get_objects()
    me = sys._getframe()
    mine = {id(objs), id(groups), id(me)}
    for g in groups:
        mine.add(id(g))
        mine.add(id(g[1]))
    targets = set()
    for _, items in groups:
        targets.update(id(t) for t in items)
    rev = {}
    for o in objs:
        if id(o) in mine:
            continue
        for r in referents(o):
            rev.setdefault(id(r), []).append(o)
    roots = [sys.modules, sys.__dict__, builtins.__dict__]
    f = me.f_back  # this frame's locals are the truth's own
    while f is not None:
        roots.extend(r for r in gc.get_referents(f) if id(r) not in mine)
        f = f.f_back
    background = set()
    stack = [r for r in roots if id(r) not in targets]
    while stack:
        o = stack.pop()
        if id(o) in background:
            continue
        background.add(id(o))
        for r in referents(o):
            k = id(r)
            if k not in background and k not in targets and k not in mine:
                stack.append(r)
    del roots, stack

    def retained(t):
        seen = {id(t): t}
        stack = [t]
        while stack:
            for r in referents(stack.pop()):
                k = id(r)
                if k not in seen and k not in background and k not in mine:
                    seen[k] = r
                    stack.append(r)
        changed = True
        while changed:
            changed = False
            for k in list(seen):
                if k == id(t):
                    continue
                if sys.getrefcount(seen[k]) > (1 << 29) or \
                        any(id(o) not in seen for o in rev.get(k, ())):
                    del seen[k]
                    changed = True
        return seen

    out, every = {}, {}
    for name, items in groups:
        union = {}
        for t in items:
            union.update(retained(t))
        every.update(union)
        out[name] = {"count": len(items), "retained_objects": len(union),
                     "retained_bytes": sum(sys.getsizeof(o)
                                           for o in union.values())}
    out["all"] = {"retained_objects": len(every),
                  "retained_bytes": sum(sys.getsizeof(o)
                                        for o in every.values())}
    return out


def plant():
    """Victims whose ob_refcnt holds what pyxray writes in its copy to
    find a node (TAG | id, ids 1000-1009: nodes of every heap): a damaged
    heap must not pass them for other objects.  3.14+ counts references in
    the low 32 bits: 1000 and more, never 0 (the victims stay); no
    collection (gc is off) reads them."""
    import ctypes
    for k in range(10):
        v = Victim()
        v.payload = ["victim %d" % k * 3]
        VICTIMS.append(v)
    # by address only: no reference taken or dropped once forged (3.14+
    # debug builds assert on a decref of what the forged flags make static)
    addrs = [id(v) for v in VICTIMS]
    del v
    for k, a in enumerate(addrs):
        ctypes.c_uint64.from_address(a).value = \
            0xD1CEB00C00000000 | (1000 + k)


def main():
    build()
    groups = [("list", list(HOLD_LIST)), ("dict", list(HOLD_DICT.values())),
              ("child", [it.child for it in HOLD_LIST[:100]])]
    doc = truth(groups)
    del groups
    plant()
    doc["pid"] = os.getpid()
    doc["unreachable"] = 50
    with open(sys.argv[1] + ".tmp", "w") as f:
        json.dump(doc, f)
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    time.sleep(float(sys.argv[2]))


main()
'''


def start(python, timeout=120):
    T.spec(python)  # a spec puts tmpdir() under /tmp, which it shares
    d = T.tmpdir()
    script = os.path.join(d, "refs_retained_target.py")
    with open(script, "w") as f:
        f.write(TARGET_CODE)
    truth = os.path.join(d, "truth.json")
    return T.start_fixture([python, script, truth, "240"], truth, timeout,
                           "target")


def close(a, b):
    return abs(a - b) <= TOLERANCE * max(a, b)


def group_name(g):
    edges = " ".join(st["edge"] + " " + st["holder"] for st in g["path"])
    if "'child'" in edges:
        return "child"
    if "HOLD_LIST" in edges:
        return "list"
    if "HOLD_DICT" in edges:
        return "dict"
    return None


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    version = T.check_target_python(args.python)
    ck = T.Checker("refs --retained %s (%s)" % (args.python, version))
    p, logf, truth = start(args.python)
    try:
        pid = p.pid
        res = T.pyxray(args.pyxray, "refs", pid, "--type", "__main__.Item",
                       "--retained", "--json", "--chains", "0", timeout=120)
        if not ck.ok(res.rc == 0, "refs --retained --json exits 0",
                     res.describe()):
            return ck.finish()
        doc = res.json()
        ck.ok(not doc["partial"], "not partial (bad objects %d)"
              % doc["bad_objects"])
        ck.ok(doc["targets"] == 650, "650 items (%d)" % doc["targets"])
        ck.ok(doc["unreachable"] == truth["unreachable"],
              "%d unreachable (truth %d)" % (doc["unreachable"],
                                             truth["unreachable"]))
        # The dict's items are one group a key (a str key is part of the
        # path's shape): disjoint, their sums are the dict's.
        sums, odd = {}, []
        for g in doc["groups"]:
            name = group_name(g)
            if name not in ("list", "dict", "child") or \
                    (name != "dict" and name in sums):
                odd.append(g["path"])
                continue
            a = sums.setdefault(name, [0, 0, 0])
            a[0] += g["count"]
            a[1] += g["retained_bytes"]
            a[2] += g["retained_objects"]
        ck.ok(sorted(sums) == ["child", "dict", "list"] and not odd,
              "the three groups (%s), no other (%d)" % (sorted(sums),
                                                       len(odd)),
              json.dumps(odd)[:2000])
        for name, (count, rbytes, robjects) in sorted(sums.items()):
            t = truth[name]
            ck.ok(count == t["count"], "%s: %d items (truth %d)"
                  % (name, count, t["count"]))
            ck.ok(close(rbytes, t["retained_bytes"]),
                  "%s: retains %d bytes (truth %d)"
                  % (name, rbytes, t["retained_bytes"]))
            ck.ok(close(robjects, t["retained_objects"]),
                  "%s: retains %d objects (truth %d)"
                  % (name, robjects, t["retained_objects"]))
        t = truth["all"]
        ck.ok(close(doc["retained_bytes"], t["retained_bytes"]),
              "all items retain %d bytes (truth %d; the groups' sum %d)"
              % (doc["retained_bytes"], t["retained_bytes"],
                 sum(g["retained_bytes"] for g in doc["groups"])))
        ck.ok(close(doc["retained_objects"], t["retained_objects"]),
              "all items retain %d objects (truth %d)"
              % (doc["retained_objects"], t["retained_objects"]))
        ck.ok(T.wait_all_running(pid) == [], "no thread left stopped")
        # the whole graph's rows on one thread and on three shares: the
        # same retained sizes and groups
        docs = []
        for jobs in ("1", "3"):
            res = T.run_shares(args.pyxray, jobs, "refs", pid, "--type",
                               "__main__.Item", "--retained", "--json")
            if ck.ok(res.rc == 0, "refs --retained --jobs %s exits 0" % jobs,
                     res.describe()):
                d2 = res.json()
                for k in ("pause_ms", "walk_ms", "retained_ms"):
                    d2.pop(k, None)
                docs.append(d2)
        ck.ok(len(docs) == 2 and docs[0] == docs[1],
              "refs --retained: --jobs 1 and --jobs 3 the same")
        # text
        res = T.pyxray(args.pyxray, "refs", pid, "--type", "__main__.Item",
                       "--retained", timeout=120)
        ck.ok(res.rc == 0 and "they retain" in res.out and
              "300 x __main__.Item (" in res.out and
              "; retain " in res.out, "text: what they retain",
              res.describe())
        # without --retained: the JSON of before, no retained key
        res = T.pyxray(args.pyxray, "refs", pid, "--type", "__main__.Item",
                       "--json", "--chains", "0", timeout=120)
        if ck.ok(res.rc == 0, "refs --json exits 0", res.describe()):
            plain = res.json()
            ck.ok("retained_bytes" not in plain and
                  all("retained_bytes" not in g for g in plain["groups"]),
                  "no retained key without --retained")
            ck.ok([(g["count"], g["bytes"]) for g in plain["groups"]] ==
                  [(g["count"], g["bytes"]) for g in doc["groups"]],
                  "the same groups with and without --retained")
        # objects whose header reads as pyxray's own node id: found, each
        # its own node, on their path
        res = T.pyxray(args.pyxray, "refs", pid, "--type", "__main__.Victim",
                       "--json", timeout=120)
        if ck.ok(res.rc == 0, "refs --type Victim exits 0", res.describe()):
            v = res.json()
            ck.ok(v["targets"] == 10 and len(v["groups"]) == 1 and
                  v["groups"][0]["count"] == 10 and
                  "VICTIMS" in json.dumps(v["groups"][0]["path"]),
                  "10 victims with a forged node id, on their path (%d)"
                  % v["targets"], json.dumps(v["groups"])[:1500])
        ck.ok(T.wait_all_running(pid) == [], "no thread left stopped")
    finally:
        T.kill_child(p)
        logf.close()
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
