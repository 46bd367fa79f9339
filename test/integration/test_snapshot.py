#!/usr/bin/env python3
"""pyxray snapshot against fixtures/suspects_target.py, one Python.

Reads the .heapsnapshot back as Chrome DevTools' loader does and checks:
  - the layout its streaming reader expects: "snapshot" (meta with the node
    and edge fields and types), then "nodes", "edges", the empty trace,
    sample and location arrays, and "strings" last; every number an
    unsigned integer; node_count and edge_count agree with the arrays and
    with the nodes' edge counts;
  - every index in range: node types, names and edge names in the string
    table, edge types, to_node a multiple of the node field count below
    the node count; node ids unique, odd, below 2^31; node 0 the synthetic
    root, every node reachable from it;
  - the graph: as many object nodes as pyxray's graph has objects, their
    self sizes summing to the census's bytes (within 5%: the census walks
    the untracked objects with the plain visitor);
  - the round trip: dominators computed here from the file alone give each
    of the fixture's holders (found by the id of its address) the retained
    size and count of the in-process truth (within 3%), weak edges left
    out as DevTools leaves them out;
  - weak edges: each of the fixture's live weak references (ref, with a
    callback, proxy, callable proxy, WeakMethod, KeyedRef) has exactly one
    edge of type "weak", named "target", to its referent's node (both found
    by the id of the address the fixture wrote), a dead one none; no other
    node has a weak edge, and the summary's weak_edges counts them;
  - ids back to addresses: `refs PID --addr @ID --json` with a holder's id
    read from the file answers the holder's address; an id no object has
    and an even id: exit 2 with a one-line error; "@x", an empty id, a
    sign, a blank, an id of 2^31 or more, an overflow: usage errors.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402
from test_suspects import start  # noqa: E402

TOLERANCE = 0.03


def snapshot_id(addr):
    """pyx_heapsnapshot_id(): the id the file gives the object at addr."""
    h = ((addr >> 3) * 0x9E3779B97F4A7C15) & ((1 << 64) - 1)
    i = (h >> 33) | 1
    return i + 4 if i <= 3 else i


def dominators(n, succ, root):
    """Immediate dominators (Cooper, Harvey, Kennedy), iteratively."""
    order, seen, stack = [], [False] * n, [(root, 0)]
    seen[root] = True
    while stack:
        v, k = stack.pop()
        if k < len(succ[v]):
            stack.append((v, k + 1))
            w = succ[v][k]
            if not seen[w]:
                seen[w] = True
                stack.append((w, 0))
        else:
            order.append(v)
    rpo = order[::-1]
    num = [0] * n
    for i, v in enumerate(order):
        num[v] = i
    preds = [[] for _ in range(n)]
    for v in range(n):
        for w in succ[v]:
            preds[w].append(v)
    idom = [-1] * n
    idom[root] = root
    changed = True
    while changed:
        changed = False
        for v in rpo[1:]:
            new = -1
            for p in preds[v]:
                if idom[p] < 0:
                    continue
                if new < 0:
                    new = p
                    continue
                a, b = p, new
                while a != b:
                    while num[a] < num[b]:
                        a = idom[a]
                    while num[b] < num[a]:
                        b = idom[b]
                new = a
            if idom[v] != new:
                idom[v] = new
                changed = True
    return idom, order


def check_file(ck, path, summary):
    with open(path, "rb") as f:
        raw = f.read()
    text = raw.decode("utf-8")  # valid UTF-8, or this raises
    # the streaming reader's order of keys, strings last
    pos = [text.find('"%s"' % k) for k in ("snapshot", "nodes", "edges",
                                           "samples", "locations",
                                           "strings")]
    ck.ok(all(p >= 0 for p in pos) and pos == sorted(pos),
          "keys in the loader's order: %s" % pos)
    doc = json.loads(text)
    meta = doc["snapshot"]["meta"]
    nf, ef = meta["node_fields"], meta["edge_fields"]
    for k in ("type", "name", "id", "self_size", "edge_count"):
        ck.ok(k in nf, "node field %s" % k)
    for k in ("type", "name_or_index", "to_node"):
        ck.ok(k in ef, "edge field %s" % k)
    nodes, edges, strings = doc["nodes"], doc["edges"], doc["strings"]
    nn, ne = doc["snapshot"]["node_count"], doc["snapshot"]["edge_count"]
    ck.ok(len(nodes) == nn * len(nf), "%d nodes x %d fields" % (nn, len(nf)))
    ck.ok(len(edges) == ne * len(ef), "%d edges x %d fields" % (ne, len(ef)))
    ck.ok(all(type(x) is int and x >= 0 for x in nodes) and
          all(type(x) is int and x >= 0 for x in edges),
          "every number an unsigned integer")
    ck.ok(all(type(s) is str for s in strings), "strings are strings")
    ntypes, etypes = meta["node_types"][0], meta["edge_types"][0]
    it, iname, iid, isize, iec = (nf.index(k) for k in (
        "type", "name", "id", "self_size", "edge_count"))
    et, ename, eto = (ef.index(k) for k in ("type", "name_or_index",
                                            "to_node"))
    W, E = len(nf), len(ef)
    bad, ids, succ, total, pos_e = [], set(), [], 0, 0
    weak = {}   # node -> [(edge name, to node)]
    for i in range(nn):
        b = i * W
        if nodes[b + it] >= len(ntypes) or nodes[b + iname] >= len(strings):
            bad.append("node %d type/name" % i)
        nid = nodes[b + iid]
        if nid in ids or nid >= 1 << 31 or not nid & 1:
            bad.append("node %d id %d" % (i, nid))
        ids.add(nid)
        total += nodes[b + isize]
        out = []
        for _ in range(nodes[b + iec]):
            if pos_e >= len(edges):
                bad.append("edges run out")
                break
            t, name, to = edges[pos_e + et], edges[pos_e + ename], \
                edges[pos_e + eto]
            if t >= len(etypes):
                bad.append("edge type %d" % t)
            elif etypes[t] not in ("element", "hidden") and \
                    name >= len(strings):
                bad.append("edge name %d" % name)
            if to % W or to // W >= nn:
                bad.append("to_node %d" % to)
            elif etypes[t] != "weak":
                out.append(to // W)
            elif name < len(strings):
                weak.setdefault(i, []).append((strings[name], to // W))
            pos_e += E
        succ.append(out)
    ck.ok(pos_e == len(edges), "the nodes' edge counts add up to the edges")
    ck.ok(not bad, "every index in range, ids unique", str(bad[:10]))
    ck.ok(ntypes[nodes[it]] == "synthetic", "node 0 is the synthetic root")
    # reachable from the root
    seen, stack = {0}, [0]
    while stack:
        for w in succ[stack.pop()]:
            if w not in seen:
                seen.add(w)
                stack.append(w)
    ck.ok(len(seen) == nn, "every node reachable from the root (%d of %d)"
          % (len(seen), nn))
    synthetic = sum(1 for i in range(nn)
                    if ntypes[nodes[i * W + it]] == "synthetic")
    ck.ok(nn - synthetic == summary["objects"],
          "%d object nodes, pyxray's graph %d" % (nn - synthetic,
                                                   summary["objects"]))
    ck.ok(total == summary["self_bytes"], "self sizes add up to %d" % total)
    return doc, succ, total, ids, weak


def check_weak(ck, doc, weak, truth, summary):
    """Each live weak reference: one weak edge "target" to its referent."""
    nodes, W = doc["nodes"], len(doc["snapshot"]["meta"]["node_fields"])
    iid = doc["snapshot"]["meta"]["node_fields"].index("id")
    by_id = {nodes[i * W + iid]: i for i in range(len(nodes) // W)}
    mine = set()
    for w in truth["weakrefs"]:
        i = by_id.get(snapshot_id(int(w["addr"], 16)))
        if not ck.ok(i is not None, "%s: its node by the id of %s"
                     % (w["kind"], w["addr"])):
            continue
        mine.add(i)
        got = weak.get(i, [])
        if w["referent"] is None:
            ck.ok(got == [], "%s: no weak edge" % w["kind"], str(got))
            continue
        to = by_id.get(snapshot_id(int(w["referent"], 16)))
        ck.ok(to is not None and got == [("target", to)],
              "%s: one weak edge 'target' to its referent's node %s"
              % (w["kind"], to), "got %s" % got)
    # the interpreter's own weak references (type caches, subclasses
    # lists...) have weak edges too: each exactly one, and none from a
    # node that is no weak reference
    strings, iname = doc["strings"], \
        doc["snapshot"]["meta"]["node_fields"].index("name")
    wtypes = ("weakref", "weakref.ReferenceType", "weakproxy",
              "weakref.ProxyType", "weakcallableproxy",
              "weakref.CallableProxyType", "weakref.WeakMethod",
              "weakref.KeyedRef", "KeyedRef", "WeakMethod")
    odd = [(i, strings[nodes[i * W + iname]], e) for i, e in weak.items()
           if len(e) != 1 or e[0][0] != "target" or
           (i not in mine and strings[nodes[i * W + iname]] not in wtypes)]
    ck.ok(not odd, "weak edges only from weak references, one each "
          "(%d nodes)" % len(weak), str(odd[:5]))
    ck.ok(summary.get("weak_edges") == sum(len(e) for e in weak.values()),
          "the summary's weak_edges %s, the file's %d"
          % (summary.get("weak_edges"), sum(len(e) for e in weak.values())))


def check_ids(ck, args, pid, doc, truth, ids):
    """refs --addr @ID: from a node id of the file back to the address."""
    nodes, W = doc["nodes"], len(doc["snapshot"]["meta"]["node_fields"])
    iid = doc["snapshot"]["meta"]["node_fields"].index("id")
    by_id = {nodes[i * W + iid]: i for i in range(len(nodes) // W)}
    for h in truth["holders"][:2]:
        i = by_id.get(snapshot_id(int(h["addr"], 16)))
        if i is None:
            continue  # reported by the round trip
        nid = nodes[i * W + iid]
        res = T.pyxray(args.pyxray, "refs", pid, "--addr", "@%d" % nid,
                       "--json", timeout=120)
        if ck.ok(res.rc == 0, "refs --addr @%d exits 0" % nid,
                 res.describe()):
            j = res.json()
            ck.ok(j.get("addr") == h["addr"] and
                  j.get("snapshot_id") == nid,
                  "%s: @%d is %s (truth %s)" % (h["name"], nid,
                                                j.get("addr"), h["addr"]))
    unknown = next(k for k in range(1000001, 1 << 31, 2) if k not in ids)
    res = T.pyxray(args.pyxray, "refs", pid, "--addr", "@%d" % unknown,
                   timeout=120)
    ck.ok(res.rc == 2 and T.one_line_stderr(res) is None and
          ("@%d" % unknown) in res.err and "hint" in res.err,
          "an id no object has: exit 2, one line with a hint",
          res.describe())
    res = T.pyxray(args.pyxray, "refs", pid, "--addr", "@2")
    ck.ok(res.rc == 2 and T.one_line_stderr(res) is None,
          "an even id: exit 2, one line", res.describe())
    res = T.pyxray(args.pyxray, "refs", pid, "--addr", "@x1")
    ck.ok(res.rc == 2 and T.one_line_stderr(res) is None and
          "snapshot id" in res.err, "--addr @x1: usage error",
          res.describe())
    # Refused before the target is touched: the ids fit 31 bits, decimal
    # digits only (no sign, no blank, no overflow).
    for bad in ("@", "@+5", "@ 5", "@5 ", "@-1", "@0x11", "@2147483649",
                "@4294967297", "@18446744073709551617",
                "@99999999999999999999999999"):
        res = T.pyxray(args.pyxray, "refs", pid, "--addr", bad)
        ck.ok(res.rc == 2 and T.one_line_stderr(res) is None and
              "snapshot id" in res.err and "no object has" not in res.err,
              "--addr %r: a usage error, before attaching" % bad,
              res.describe())


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    version = T.check_target_python(args.python)
    ck = T.Checker("snapshot %s (%s)" % (args.python, version))
    p, logf, truth = start(args.python)
    try:
        pid = p.pid
        out = os.path.join(T.tmpdir(), "heap.heapsnapshot")
        res = T.pyxray(args.pyxray, "snapshot", pid, "-o", out, "--json",
                       timeout=120)
        if not ck.ok(res.rc == 0 and os.path.exists(out),
                     "snapshot -o exits 0", res.describe()):
            return ck.finish()
        summary = res.json()
        ck.ok(T.wait_all_running(p.pid) == [], "no thread left stopped")
        doc, succ, total, ids, weak = check_file(ck, out, summary)
        check_weak(ck, doc, weak, truth, summary)
        census = T.pyxray(args.pyxray, "census", pid, "--json", timeout=120)
        if ck.ok(census.rc == 0, "census exits 0", census.describe()):
            cb = census.json()["bytes"]
            ck.ok(abs(total - cb) <= 0.05 * cb, "self sizes %d, census %d"
                  % (total, cb))
        # the round trip: retained sizes from the file alone
        nodes, W = doc["nodes"], len(doc["snapshot"]["meta"]["node_fields"])
        nf = doc["snapshot"]["meta"]["node_fields"]
        iid, isize = nf.index("id"), nf.index("self_size")
        iname = nf.index("name")
        nn = len(nodes) // W
        idom, post = dominators(nn, succ, 0)
        ret = [nodes[i * W + isize] for i in range(nn)]
        cnt = [1] * nn
        for v in post:
            if v and idom[v] >= 0:
                ret[idom[v]] += ret[v]
                cnt[idom[v]] += cnt[v]
        by_id = {nodes[i * W + iid]: i for i in range(nn)}
        for h in truth["holders"]:
            i = by_id.get(snapshot_id(int(h["addr"], 16)))
            if not ck.ok(i is not None and doc["strings"][
                    nodes[i * W + iname]] == h["type"],
                    "%s: its node by the id of %s" % (h["name"], h["addr"])):
                continue
            ok = abs(ret[i] - h["retained_bytes"]) <= \
                TOLERANCE * h["retained_bytes"] and \
                abs(cnt[i] - h["retained_objects"]) <= \
                TOLERANCE * h["retained_objects"]
            ck.ok(ok, "%s: retains %d bytes, %d objects in the file "
                  "(truth %d, %d)" % (h["name"], ret[i], cnt[i],
                                      h["retained_bytes"],
                                      h["retained_objects"]))
        check_ids(ck, args, pid, doc, truth, ids)
        # The graph's rows on one thread and on three shares: the same
        # file, byte for byte (the ids, the edges, their order).
        files = []
        for jobs in ("1", "3"):
            f = os.path.join(T.tmpdir(), "jobs%s.heapsnapshot" % jobs)
            res = T.run_shares(args.pyxray, jobs, "snapshot", pid, "-o", f)
            if ck.ok(res.rc == 0, "snapshot --jobs %s exits 0" % jobs,
                     res.describe()):
                with open(f, "rb") as fh:
                    files.append(fh.read())
        ck.ok(len(files) == 2 and files[0] == files[1],
              "--jobs 1 and --jobs 3: the same file (%s bytes)"
              % [len(b) for b in files])
        # bad input
        res = T.pyxray(args.pyxray, "snapshot", pid)
        ck.ok(res.rc == 2 and T.one_line_stderr(res) is None,
              "no -o: usage error", res.describe())
        res = T.pyxray(args.pyxray, "snapshot", pid, "-o",
                       "/nonexistent-dir/x.heapsnapshot")
        ck.ok(res.rc not in (0, None) and T.one_line_stderr(res) is None,
              "unwritable output: one-line error", res.describe())
        ck.ok(T.wait_all_running(p.pid) == [], "no thread left stopped")
    finally:
        T.kill_child(p)
        logf.close()
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
