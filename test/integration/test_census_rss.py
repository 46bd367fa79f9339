#!/usr/bin/env python3
"""census and suspects place their RSS with memory's accounting; census
--retained, one Python.

1. fixtures/memory_target.py (C blocks through ctypes, fragmented pymalloc,
   a mapped file, threads; its truth taken in-process: mallinfo2(),
   sys._debugmallocstats(), smaps_rollup):
   - `census --json`'s "memory" object: pymalloc's figures equal the
     fixture's sys._debugmallocstats() exactly, glibc malloc's within 2% of
     mallinfo2(), the RSS within 5% of smaps_rollup, at most a tenth of it
     unexplained (test_memory.py's bounds); every figure equals `memory
     --json`'s within a few percent (the target is at rest), and it has
     all of memory's keys but its lists (one writer); the Python
     objects are the census's; "unexplained_bytes" is memory's; the pause
     is both stops;
   - the text output's two RSS lines, the first naming each part as
     `memory`'s table does; `suspects --json` has the same
     "memory" object, and its note names the biggest part that is not
     Python objects, as computed here from those figures.
2. fixtures/census_rss_target.py (a type, __main__.Bag, whose three
   instances hold lists of dicts of their own; a ticker thread that records
   each stop of the target as a gap in its wake-ups):
   - `census --retained --json`: Bag's retained bytes within 3% of the
     in-process truth (the retained set of all its instances), its count
     and own bytes exact; `--sort retained` orders by retained;
   - with --hold-ms (test builds): census and suspects stop the target
     twice, with --no-placement once (counted by the target's ticker), and
     the pause reported covers both holds; `census --interval` stops it
     three times (two copies, the placement), all in the pause reported;
   - on a gcore of the fixture (gdb): census falls back to the RSS line of
     before and says why (skipped, named, without gdb or for a test bed
     root).
3. the fixture again, running tracemalloc: suspects' pause covers the
   traces' stop ("traces_pause_ms"; skipped where pyxray cannot read the
   traces, the stripped system Python).
A part that cannot be read on a Python (pymalloc of a stripped build) is a
named "SKIP PART"; its other parts are still checked.
"""

import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402
import test_memory as M  # noqa: E402

RSS_TARGET = os.path.join(T.FIXTURES, "census_rss_target.py")
HOLD_MS = 300


def near(got, want, rel, absolute):
    return got is not None and want is not None and \
        abs(got - want) <= max(rel * abs(want), absolute)


def check_truth(ck, fx, mem, what):
    """mem ("memory" of census or suspects) against the fixture's truth,
    with test_memory.py's bounds."""
    p, m, mp = mem["pymalloc"], mem["malloc"], mem["mappings"]
    st, mi = fx.stats, fx.mallinfo
    if p["available"]:
        for key in ("arenas", "used_bytes", "free_bytes", "pools_empty",
                    "pool_header_bytes", "quantization_bytes",
                    "alignment_bytes"):
            # The truth is of the moment the fixture wrote it; by census's
            # and suspects' stops (after memory's and each other's) the
            # idle target may have taken or freed a block or two (seen on
            # 3.14: one 64-byte block).  test_memory.py checks it exactly.
            slack = 256 if key in ("used_bytes", "free_bytes") else 0
            ck.ok(near(p.get(key), st.get(key), 0, slack),
                  "%s: pymalloc %s %s, _debugmallocstats %s (within %d "
                  "bytes)" % (what, key, p.get(key), st.get(key), slack))
        ck.ok(0 < p["fragmentation"] < 1, "%s: fragmentation stated (%.0f%%)"
              % (what, 100 * p["fragmentation"]))
    else:
        T.log("SKIP PART: %s: pymalloc: %s" % (what, p["why"]))
    if ck.ok(m["available"], "%s: glibc malloc read" % what, str(m["why"])):
        ck.ok(near(m["in_use_bytes"], mi["uordblks"], 0.02, 256 << 10),
              "%s: malloc in use %d, mallinfo2 %d"
              % (what, m["in_use_bytes"], mi["uordblks"]))
        ck.ok(near(m["free_bytes"], mi["fordblks"], 0, 512 << 10),
              "%s: malloc free %d, mallinfo2 %d"
              % (what, m["free_bytes"], mi["fordblks"]))
        if m["mmapped_bytes"] is None:
            T.log("SKIP PART: %s: mmapped figures: mp_ not found" % what)
        else:
            ck.ok(near(m["mmapped_bytes"], mi["hblkhd"], 0.02, 256 << 10),
                  "%s: malloc mmapped %d, mallinfo2 %d"
                  % (what, m["mmapped_bytes"], mi["hblkhd"]))
    rss = mem["rss_bytes"]
    want = fx.truth["smaps_rollup"]["Rss"]
    ck.ok(near(rss, want, 0.05, 1 << 20), "%s: RSS %d, smaps_rollup %d"
          % (what, rss, want))
    parts = sum(mp[k] for k in (
        "pymalloc_rss_bytes", "malloc_heap_rss_bytes", "malloc_mmap_rss_bytes",
        "stack_rss_bytes", "file_rss_bytes", "shmem_rss_bytes",
        "special_rss_bytes", "anon_other_rss_bytes"))
    ck.ok(parts == rss, "%s: the parts add up to the RSS (%d, %d)"
          % (what, parts, rss))
    ck.ok(mp["malloc_mmap_rss_bytes"] >= 0.95 * fx.truth["large_bytes"],
          "%s: the large C blocks placed as mmapped" % what)
    if p["available"]:
        ck.ok(mem["unexplained_bytes"] <= rss / 10, "%s: unexplained %d: at "
              "most a tenth of the RSS (%.1f%%)"
              % (what, mem["unexplained_bytes"],
                 100 * mem["unexplained_share"]))
    else:
        T.log("SKIP PART: %s: at most a tenth unexplained: pymalloc unread"
              % what)


def check_same(ck, mem, ref, what):
    """mem against 'memory --json' (ref) taken a moment later."""
    bad = []
    for key in ("arenas", "arena_bytes", "used_bytes", "free_bytes",
                "pools_empty", "empty_pool_bytes"):
        if ref["pymalloc"]["available"] and \
                mem["pymalloc"].get(key) != ref["pymalloc"].get(key):
            bad.append("pymalloc %s %s, memory %s" % (
                key, mem["pymalloc"].get(key), ref["pymalloc"].get(key)))
    for key in ("in_use_bytes", "free_bytes", "mmapped_bytes", "arena_bytes",
                "top_bytes"):
        if ref["malloc"]["available"] and not near(
                mem["malloc"].get(key), ref["malloc"].get(key), 0.03,
                256 << 10):
            bad.append("malloc %s %s, memory %s" % (
                key, mem["malloc"].get(key), ref["malloc"].get(key)))
    for key in ("pymalloc_rss_bytes", "malloc_heap_rss_bytes",
                "malloc_mmap_rss_bytes", "stack_rss_bytes", "file_rss_bytes",
                "shmem_rss_bytes", "special_rss_bytes",
                "anon_other_rss_bytes"):
        if not near(mem["mappings"][key], ref["mappings"][key], 0.03,
                    512 << 10):
            bad.append("mappings %s %s, memory %s" % (
                key, mem["mappings"][key], ref["mappings"][key]))
    for key in ("rss_bytes", "unexplained_bytes"):
        if not near(mem[key], ref[key], 0.03, 512 << 10):
            bad.append("%s %s, memory %s" % (key, mem[key], ref[key]))
    ck.ok(not bad, "%s: the figures of 'memory --json' (within 3%%)" % what,
          "\n".join(bad))


LISTS = {"pymalloc": {"classes"}, "malloc": {"arenas"},
         "mappings": {"stacks", "files"}}


def check_keys(ck, mem, ref, what):
    """mem has memory --json's keys, every one, less its lists."""
    bad = []
    top = set(ref) - {"pid", "python_version"}
    if set(mem) - {"available", "why"} != top:
        bad.append("top: %s" % sorted(set(mem) ^ (top | {"available",
                                                         "why"})))
    for part in ("python", "pymalloc", "malloc", "mappings"):
        want = set(ref.get(part) or {}) - LISTS.get(part, set())
        got = set(mem.get(part) or {})
        if got != want:
            bad.append("%s: %s" % (part, sorted(got ^ want)))
    ck.ok(not bad, "%s: \"memory\" has memory --json's keys (less its "
          "lists)" % what, "; ".join(bad))


def biggest(mem):
    """The part suspects' note names: cmd_rss_biggest()'s rule."""
    p, m, mp = mem["pymalloc"], mem["malloc"], mem["mappings"]
    parts = []
    if m["available"]:
        c = m["in_use_bytes"] + (m["mmapped_bytes"] or 0)
        pu = p["used_bytes"] if p["available"] else 0
        big = max(0, mem["python"]["objects_bytes"] - pu)
        parts.append((max(0, c - big), "glibc malloc holds"))
        parts.append((m["free_bytes"], "glibc malloc holds"))
    if p["available"]:
        parts.append((max(0, mp["pymalloc_rss_bytes"] - p["used_bytes"]),
                      "pymalloc's arenas hold"))
    parts += [(mp["stack_rss_bytes"], "thread stacks hold"),
              (mp["file_rss_bytes"], "mapped files hold"),
              (mp["shmem_rss_bytes"], "shared memory holds"),
              (max(0, mem["unexplained_bytes"]), "anonymous memory no")]
    best = parts[0]
    for x in parts[1:]:
        if x[0] > best[0]:
            best = x
    return best


def check_names(ck, args, fx, line):
    """census's RSS line names each part as `memory`'s table does."""
    m = T.pyxray(args.pyxray, "memory", fx.pid, timeout=120)
    ml = m.out.splitlines()
    try:
        i = [k for k, l in enumerate(ml) if l.startswith("RSS ")][0]
    except IndexError:
        ck.ok(False, "memory text: an RSS table", m.describe())
        return
    names = []
    for l in ml[i + 1:]:
        if not l.startswith("  ") or l.startswith("  ("):
            break
        # "  NAME   SIZE UNIT   PCT%"
        names.append(" ".join(l.split()[:-3]))
    body = line.split(" placed: ", 1)[-1].rsplit(" (", 1)[0]
    parts = [" ".join(p.split()[:-2]) for p in body.split(", ")]
    ck.ok(len(names) == 8 and parts and all(p in names for p in parts),
          "census's RSS line names the parts as memory does (%s; memory: "
          "%s)" % (parts, names))


def case_memory(ck, args, label):
    fx = M.MemoryFixture(args.python)
    try:
        r = T.pyxray(args.pyxray, "census", fx.pid, "--json", "--top", "5",
                     timeout=120)
        if not ck.ok(r.rc == 0, "census --json exits 0", r.describe()):
            return
        doc = r.json()
        mem = doc.get("memory") or {}
        if not ck.ok(mem.get("available"), "census --json: the RSS placed",
                     json.dumps(mem)[:500]):
            return
        ref = T.pyxray(args.pyxray, "memory", fx.pid, "--json", "--top", "0",
                       timeout=120)
        if not ck.ok(ref.rc == 0, "memory --json exits 0", ref.describe()):
            return
        ref = ref.json()
        check_truth(ck, fx, mem, "census")
        check_same(ck, mem, ref, "census")
        check_keys(ck, mem, ref, "census")
        ck.ok(mem["python"]["objects_bytes"] == doc["bytes"] and
              doc["bytes"] >= fx.truth["python_survivor_bytes"],
              "census: memory's Python objects are the census's (%d)"
              % doc["bytes"])
        ck.ok(doc["unexplained_bytes"] == mem["unexplained_bytes"],
              "census: unexplained_bytes is memory's (%d)"
              % doc["unexplained_bytes"])
        ck.ok(doc["placement_pause_ms"] > 0 and
              abs(doc["pause_ms"] - doc["copy_pause_ms"] -
                  doc["placement_pause_ms"]) < 0.01,
              "census: the pause is both stops (%.1f = %.1f + %.1f ms)"
              % (doc["pause_ms"], doc["copy_pause_ms"],
                 doc["placement_pause_ms"]))
        t = T.pyxray(args.pyxray, "census", fx.pid, "--top", "3", timeout=120)
        lines = t.out.splitlines()
        rss = [i for i, l in enumerate(lines) if l.startswith("RSS: ")]
        ok = t.rc == 0 and len(rss) == 1 and rss[0] + 1 < len(lines)
        ck.ok(ok and "placed:" in lines[rss[0]] and
              "unexplained" in lines[rss[0]] and
              "Python objects" in lines[rss[0] + 1] and
              "glibc malloc in use" in lines[rss[0] + 1] and
              "in two stops" in t.out,
              "census text: the RSS placed in two lines, both stops said",
              t.describe())
        if ok:
            check_names(ck, args, fx, lines[rss[0]])
        s = T.pyxray(args.pyxray, "suspects", fx.pid, "--json", timeout=120)
        if ck.ok(s.rc == 0, "suspects --json exits 0", s.describe()):
            sdoc = s.json()
            smem = sdoc.get("memory") or {}
            if ck.ok(smem.get("available"), "suspects --json: the RSS placed",
                     json.dumps(smem)[:500]):
                check_truth(ck, fx, smem, "suspects")
                check_same(ck, smem, ref, "suspects")
                check_keys(ck, smem, ref, "suspects")
                ck.ok(smem["python"]["objects_bytes"] == sdoc["heap_bytes"],
                      "suspects: memory's Python objects are its heap")
        st = T.pyxray(args.pyxray, "suspects", fx.pid, timeout=120)
        note = [l for l in st.out.splitlines() if l.startswith("Note:")]
        if ck.ok(st.rc == 0 and len(note) == 1, "suspects: a note on the RSS",
                 st.describe()):
            want = biggest(smem) if smem.get("available") else (0, "?")
            ck.ok(want[1] in note[0] and "(see 'pyxray memory')" in note[0],
                  "suspects' note names the biggest part: %s (%d bytes)"
                  % (want[1], want[0]), note[0])
    finally:
        fx.stop()


class RssFixture(object):
    def __init__(self, python, timeout=60, tracemalloc=False):
        self.dir = T.tmpdir()
        self.logf = open(os.path.join(self.dir, "fixture.log"), "w")
        xopt = ["-X", "tracemalloc=1"] if tracemalloc else []
        self.proc = T.spawn([python] + xopt + [RSS_TARGET, self.dir,
                                               "--lifetime", "240"],
                            stdout=self.logf,
                            stderr=T.subprocess.STDOUT)
        self.pid = self.proc.pid
        path = os.path.join(self.dir, "truth.json")
        deadline = time.monotonic() + timeout
        while not os.path.exists(path):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("fixture not ready: rc %s: %s" % (
                    self.proc.poll(), open(self.logf.name).read()))
            time.sleep(0.05)
        with open(path) as f:
            self.truth = json.load(f)

    def gaps(self):
        with open(os.path.join(self.dir, "gaps.json")) as f:
            return json.load(f)["gaps"]

    def stop(self):
        T.kill_child(self.proc)
        self.logf.close()


def stops(fx, args, cmd, extra):
    """The stops the target's ticker saw during one pyxray run: (number
    of gaps, their sum in ms, the Result)."""
    before = len(fx.gaps())
    r = T.pyxray(args.pyxray, cmd, fx.pid, "--json", "--hold-ms",
                 str(HOLD_MS), *extra, timeout=120)
    time.sleep(0.3)  # the ticker writes after its next wake-up
    g = fx.gaps()[before:]
    return len(g), 1000 * sum(g), r


def case_stops(ck, args, fx):
    probe = T.pyxray(args.pyxray, "census", fx.pid, "--hold-ms", "1",
                     "--top", "1", timeout=60)
    if probe.rc == 2 and "--hold-ms" in probe.err:
        T.log("SKIP PART: counting stops: --hold-ms exists in test builds "
              "only (-DPYX_TEST_HOOKS=ON)")
        return
    for cmd in ("census", "suspects"):
        n, ms, r = stops(fx, args, cmd, ())
        if not ck.ok(r.rc == 0, "%s --hold-ms exits 0" % cmd, r.describe()):
            continue
        doc = r.json()
        doc.setdefault("memory", {})
        doc.setdefault("placement_pause_ms", 0)
        # two holds, or one gap the ticker could not split (>= 2 holds)
        ck.ok(n == 2 or (n == 1 and ms >= 2 * HOLD_MS - 20),
              "%s: two stops, the target saw %d gaps (%.0f ms)" % (cmd, n, ms))
        ck.ok(doc["pause_ms"] >= 2 * HOLD_MS and doc["memory"].get("available")
              and doc["placement_pause_ms"] >= HOLD_MS,
              "%s: the pause reported covers both holds (%.0f ms; placing "
              "%.0f ms)" % (cmd, doc["pause_ms"], doc["placement_pause_ms"]))
        n, ms, r = stops(fx, args, cmd, ("--no-placement",))
        if not ck.ok(r.rc == 0, "%s --no-placement exits 0" % cmd,
                     r.describe()):
            continue
        doc = r.json()
        doc.setdefault("memory", {})
        doc.setdefault("placement_pause_ms", None)
        ck.ok(n == 1 and ms < 2 * HOLD_MS - 20,
              "%s --no-placement: one stop, the target saw %d gaps (%.0f ms)"
              % (cmd, n, ms))
        ck.ok(doc["memory"] == {"available": False,
                                "why": "not placed (--no-placement)"} and
              doc["placement_pause_ms"] == 0 and
              doc.get("unexplained_bytes") == doc["rss_bytes"] - (
                  doc["bytes"] if cmd == "census" else doc["heap_bytes"]),
              "%s --no-placement: memory not available, unexplained is the "
              "RSS minus the objects" % cmd, json.dumps(doc["memory"]))


def case_interval_stops(ck, args, fx):
    """census --interval: two heap copies and the placement, three stops,
    all in the pause reported."""
    n, ms, r = stops(fx, args, "census", ("--interval", "0.5", "--top",
                                          "1"))
    if r.rc == 2 and "--hold-ms" in r.err:
        return
    if not ck.ok(r.rc == 0, "census --interval --hold-ms exits 0",
                 r.describe()):
        return
    doc = r.json()
    ck.ok(n == 3 or (n < 3 and ms >= 3 * HOLD_MS - 20),
          "census --interval: three stops, the target saw %d gaps (%.0f ms)"
          % (n, ms))
    ck.ok(doc.get("copy_pause_ms", 0) >= 2 * HOLD_MS and
          doc.get("placement_pause_ms", 0) >= HOLD_MS and
          doc["pause_ms"] >= 3 * HOLD_MS and
          abs(doc["pause_ms"] - doc["copy_pause_ms"] -
              doc["placement_pause_ms"]) < 0.01,
          "census --interval: the pause reported covers the three holds "
          "(%.0f ms; copies %.0f ms, placing %.0f ms)"
          % (doc["pause_ms"], doc.get("copy_pause_ms", -1),
             doc.get("placement_pause_ms", -1)))
    t = T.pyxray(args.pyxray, "census", fx.pid, "--interval", "0.2",
                 "--top", "1", timeout=120)
    ck.ok(t.rc == 0 and "in three stops" in t.out and
          "copy the heap twice" in t.out,
          "census --interval text: three stops said", t.describe())


def case_traces(ck, args):
    """suspects on a target that runs tracemalloc: the traces' stop is in
    the pause reported."""
    fx = RssFixture(args.python, tracemalloc=True)
    try:
        a = T.pyxray(args.pyxray, "allocs", fx.pid, "--json", "--top", "1",
                     timeout=120)
        if a.rc != 0:
            T.log("SKIP PART: the traces' stop: pyxray cannot read this "
                  "Python's tracemalloc traces (allocs exits %s)" % a.rc)
            return
        r = T.pyxray(args.pyxray, "suspects", fx.pid, "--json", timeout=120)
        if not ck.ok(r.rc == 0, "suspects --json (tracemalloc) exits 0",
                     r.describe()):
            return
        doc = r.json()
        tr = doc.get("traces_pause_ms")
        ck.ok(tr is not None and tr > 0 and
              abs(doc["pause_ms"] - doc["copy_pause_ms"] -
                  doc["placement_pause_ms"] - tr) < 0.01,
              "suspects (tracemalloc): the traces' stop is in the pause "
              "(%.3f ms; copy %.3f, placing %.3f, traces %s)"
              % (doc["pause_ms"], doc["copy_pause_ms"],
                 doc["placement_pause_ms"], tr))
        t = T.pyxray(args.pyxray, "suspects", fx.pid, timeout=120)
        ck.ok(t.rc == 0 and "in three stops" in t.out and
              "to read tracemalloc's traces" in t.out,
              "suspects text (tracemalloc): three stops said", t.describe())
    finally:
        fx.stop()


def case_retained(ck, args, fx):
    t = fx.truth
    r = T.pyxray(args.pyxray, "census", fx.pid, "--retained", "--json",
                 "--no-placement", timeout=120)
    if not ck.ok(r.rc == 0, "census --retained --json exits 0", r.describe()):
        return
    doc = r.json()
    types = {x["type"]: x for x in doc["types"]}
    bag = types.get(t["type"])
    if not ck.ok(bag is not None, "census --retained: %s in the table"
                 % t["type"], json.dumps(doc["types"])[:1500]):
        return
    ck.ok(bag["count"] == t["instances"] and bag["bytes"] == t["own_bytes"],
          "%s: %d instances, %d bytes of their own (truth %d, %d)"
          % (t["type"], bag["count"], bag["bytes"], t["instances"],
             t["own_bytes"]))
    ck.ok(near(bag["retained"], t["retained_bytes"], 0.03, 0),
          "%s retains %d bytes, the in-process truth %d (3%%)"
          % (t["type"], bag["retained"], t["retained_bytes"]))
    ck.ok(all("retained" in x for x in doc["types"]) and
          doc["retained_from"] == "object graph",
          "every row has its retained bytes; the table is the object graph's")
    # every type, not the 20 that retain the most: each type a plain
    # census finds 50 times or more is a row
    c = T.pyxray(args.pyxray, "census", fx.pid, "--json", "--top", "0",
                 "--no-placement", timeout=120)
    if ck.ok(c.rc == 0, "census --json --top 0 exits 0", c.describe()):
        want = set(x["type"] for x in c.json()["types"] if x["count"] >= 50)
        missing = sorted(want - set(types))
        ck.ok(len(doc["types"]) > 20 and not missing,
              "census --retained lists every type (%d rows; the census's "
              "types of 50+ objects: %d, missing %s)"
              % (len(doc["types"]), len(want), missing[:10]))
    r = T.pyxray(args.pyxray, "census", fx.pid, "--retained", "--json",
                 "--sort", "retained", "--no-placement", timeout=120)
    if ck.ok(r.rc == 0, "census --retained --sort retained exits 0",
             r.describe()):
        ret = [x["retained"] for x in r.json()["types"]]
        ck.ok(ret == sorted(ret, reverse=True), "--sort retained: biggest "
              "retained first")
    r = T.pyxray(args.pyxray, "census", fx.pid, "--retained", "--top", "0",
                 "--no-placement", timeout=120)
    row = [l for l in r.out.splitlines() if l.endswith("  " + t["type"])]
    ck.ok(r.rc == 0 and "retained" in r.out and len(row) == 1 and
          len(row[0].split()) == 6,
          "census --retained text: a row with a retained column",
          r.describe())
    r = T.pyxray(args.pyxray, "census", fx.pid, "--sort", "retained")
    ck.ok(r.rc == 2, "--sort retained without --retained: a usage error",
          r.describe())


def case_core(ck, args, fx, spec):
    if spec is not None and spec.kind == "root":
        T.log("SKIP PART: the core fallback: gcore of a test bed root's "
              "target is test_core's (the fallback does not depend on it)")
        return
    if not shutil.which("gdb"):
        T.log("SKIP PART: the core fallback: gdb (for gcore) is not "
              "installed")
        return
    core = os.path.join(T.tmpdir(), "rss.core")
    g = T.run(["gdb", "-batch", "-nx", "-p", str(fx.pid), "-ex",
               "gcore " + core], timeout=120)
    if not os.path.exists(core):
        T.log("SKIP PART: the core fallback: gdb wrote no core (rc %s)"
              % g.rc)
        return
    try:
        r = T.pyxray(args.pyxray, "census", core, "--json", "--top", "1",
                     timeout=120)
        if ck.ok(r.rc == 0, "census CORE --json exits 0", r.describe()):
            doc = r.json()
            mem = doc.get("memory") or {}
            ck.ok(mem.get("available") is False and
                  "not a live process" in str(mem.get("why")) and
                  doc["pause_ms"] == 0,
                  "census CORE: not placed, and why", json.dumps(mem))
        r = T.pyxray(args.pyxray, "census", core, "--top", "1", timeout=120)
        line = [x for x in r.out.splitlines() if x.startswith("RSS")]
        ck.ok(r.rc == 0 and len(line) == 1 and "not a live process" in
              line[0], "census CORE text: the RSS line says why it is not "
              "placed", r.describe())
    finally:
        os.unlink(core)


def target_state(pid):
    """The target's scheduler state letter (t: stopped by a tracer)."""
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def case_place_fails(ck, args, fx):
    """The placement's stop fails (test hook): census and suspects keep
    their result, fall back to the RSS line with the reason, and the
    target runs again."""
    os.environ["PYX_TEST_PLACE_FAIL"] = "1"
    try:
        c = T.pyxray(args.pyxray, "census", fx.pid, "--json", "--top", "1",
                     timeout=120)
        s = T.pyxray(args.pyxray, "suspects", fx.pid, "--top", "1",
                     timeout=120)
    finally:
        del os.environ["PYX_TEST_PLACE_FAIL"]
    if not ck.ok(c.rc == 0, "census, the placement failing: exits 0",
                 c.describe()):
        return
    doc = c.json()
    mem = doc.get("memory") or {}
    if mem.get("available") is True:
        T.log("SKIP PART: the placement's failure: pyxray was built "
              "without PYX_TEST_HOOKS")
        return
    ck.ok(mem.get("available") is False and "test hook" in
          str(mem.get("why")) and doc["objects"] > 0 and
          doc["unexplained_bytes"] == doc["rss_bytes"] - doc["bytes"],
          "census: the census kept, the RSS minus the objects, and why "
          "(%s)" % mem.get("why"), json.dumps(mem)[:300])
    line = [x for x in s.out.splitlines() if "RSS" in x and "not placed"
            in x]
    ck.ok(s.rc == 0 and "Suspect" in s.out and len(line) == 1 and
          "test hook" in line[0],
          "suspects: its report, and the RSS line says why it is not "
          "placed", s.describe())
    ck.ok(target_state(fx.pid) not in ("t", "T"),
          "the target runs after the failed placement (state %s)"
          % target_state(fx.pid))


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    T.check_target_python(args.python)
    spec = T.spec(args.python)
    label = spec.label() if spec else args.python
    ck = T.Checker("census and suspects' RSS, census --retained on %s"
                   % label)
    case_memory(ck, args, label)
    fx = RssFixture(args.python)
    try:
        case_retained(ck, args, fx)
        case_stops(ck, args, fx)
        case_interval_stops(ck, args, fx)
        case_core(ck, args, fx, spec)
        case_place_fails(ck, args, fx)
    finally:
        fx.stop()
    case_traces(ck, args)
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
