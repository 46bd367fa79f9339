#!/usr/bin/env python3
"""pyxray memory against fixtures/memory_target.py, one Python.

The fixture records its own truth in-process, as its last acts before it
idles (docs/memory.md): sys._debugmallocstats() (pymalloc), glibc's
mallinfo2() through ctypes, /proc/self/smaps_rollup, its threads' stacks,
a mapped file.  Checked:
  - pymalloc: arenas, bytes in allocated and available blocks, unused pools,
    pool headers, quantization, alignment, and with --classes every size
    class's pools, blocks in use and available: exactly (the target is at
    rest);
  - glibc malloc: arena bytes, in use, mmapped bytes and blocks within 2%
    (or 256 KiB), one arena per thread that malloc'ed; free bytes within
    512 KiB;
  - the RSS within 5% of smaps_rollup's; the large C blocks placed as
    malloc mmapped blocks, the mapped file by name, one stack per thread;
    at most a tenth of the RSS unexplained;
  - smaps as pyxray read it through the target (pinned, not by PID
    number): the RSS, the file-backed and the special mappings' Rss equal
    the kernel's /proc/PID/smaps read here afterwards (the target idles),
    and the page map was read (resident_exact);
  - Python objects counted (at least the fixture's survivors).
pymalloc's state is found by the method this Python calls for: 3.12+ the
interpreter's state; 3.8-3.11 the interpreter's .symtab, or without one
(Debian's stripped /usr/bin/python3.11) the signature scan, whose figures
are checked against the truth exactly as the symbols' are.  On a 3.8-3.11
with symbols, the scan is also forced (PYX_TEST_PYMALLOC_SCAN=1, a
PYX_TEST_HOOKS build) and must find the same state: the same figures, the
truth's.  A part pyxray cannot read on this Python is a named partial skip
("SKIP PART"), never a silent pass; its other parts are still checked.
"""

import json
import os
import re
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402

TARGET = os.path.join(T.FIXTURES, "memory_target.py")
MI_FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
             "fsmblks", "uordblks", "fordblks", "keepcost")


class MemoryFixture(object):
    def __init__(self, python, timeout=90):
        self.dir = T.tmpdir()
        self.log_path = os.path.join(self.dir, "fixture.log")
        self.logf = open(self.log_path, "w")
        self.proc = T.spawn([python, TARGET, self.dir, "--lifetime", "240"],
                            stdout=self.logf, stderr=T.subprocess.STDOUT)
        self.pid = self.proc.pid
        deadline = time.monotonic() + timeout
        ready = os.path.join(self.dir, "ready")
        while not os.path.exists(ready):
            if self.proc.poll() is not None:
                raise RuntimeError("fixture exited %s: %s"
                                   % (self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                raise RuntimeError("fixture not ready in %d s" % timeout)
            time.sleep(0.05)
        # "ready" appears while the fixture is still in os.rename(): until
        # it is back in pause(), pymalloc may differ from the recorded
        # state (seen: one 64-byte block on 3.14, by a reader fast enough)
        T.wait_in_pause(self.pid)
        with open(os.path.join(self.dir, "truth.json")) as f:
            self.truth = json.load(f)
        with open(os.path.join(self.dir, "mallinfo2.bin"), "rb") as f:
            self.mallinfo = dict(zip(MI_FIELDS, struct.unpack("<10Q", f.read(80))))
        with open(os.path.join(self.dir, "mallocstats.txt")) as f:
            self.stats = parse_stats(f.read())

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        T.kill_child(self.proc)
        self.logf.close()


def num(s):
    return int(s.replace(",", ""))


def parse_stats(text):
    """sys._debugmallocstats()'s pymalloc part: totals and classes."""
    out = {"classes": {}}
    pats = {
        "arenas": r"^# arenas allocated current\s*=\s*([\d,]+)",
        "arenas_total": r"^# arenas allocated total\s*=\s*([\d,]+)",
        "arenas_highwater": r"^# arenas highwater mark\s*=\s*([\d,]+)",
        "used_bytes": r"^# bytes in allocated blocks\s*=\s*([\d,]+)",
        "free_bytes": r"^# bytes in available blocks\s*=\s*([\d,]+)",
        "pools_empty": r"^([\d,]+) unused pools \*",
        "pool_header_bytes": r"^# bytes lost to pool headers\s*=\s*([\d,]+)",
        "quantization_bytes": r"^# bytes lost to quantization\s*=\s*([\d,]+)",
        "alignment_bytes": r"^# bytes lost to arena alignment\s*=\s*([\d,]+)",
    }
    for key, pat in pats.items():
        m = re.search(pat, text, re.M)
        if m:
            out[key] = num(m.group(1))
    m = re.search(r"^class\s+size\s+num pools.*?\n-+.*?\n(.*?)\n\s*\n", text,
                  re.M | re.S)
    if m:
        for line in m.group(1).splitlines():
            f = line.split()
            if len(f) == 5 and all(x.isdigit() for x in f):
                out["classes"][int(f[1])] = tuple(int(x) for x in f[2:])
    return out


def near(got, want, rel, absolute):
    return got is not None and abs(got - want) <= max(rel * want, absolute)


def has_pymalloc_symbols(python):
    """Whether the ELF file holding the interpreter names pymalloc's
    3.8-3.11 static state in its .symtab (a stripped build does not)."""
    out = T.subprocess.run(["readelf", "-s", "-W",
                            T.interpreter_binary(python)],
                           stdout=T.subprocess.PIPE,
                           stderr=T.subprocess.DEVNULL,
                           universal_newlines=True)
    return re.search(r"\sOBJECT\s+LOCAL\s.*\smaxarenas$", out.stdout,
                     re.M) is not None


def expected_method(python, version):
    if T.vtuple(version) >= (3, 12):
        return "interpreter state"
    return "symbols" if has_pymalloc_symbols(python) else "signature scan"


def check_pymalloc(ck, fx, doc, spec_label, method=None):
    p = doc["pymalloc"]
    st = fx.stats
    if not p["available"]:
        if method == "signature scan":
            ck.fail("pymalloc read by the signature scan", p["why"])
            return
        T.log("SKIP PART: pymalloc on %s: %s" % (spec_label, p["why"]))
        ck.ok("arenas" not in st or p["why"],
              "pymalloc unreadable only with a reason")
        return
    if method:
        ck.ok(p.get("method") == method, "pymalloc found by %s (%s)"
              % (method, p.get("method")))
    if "arenas" not in st:
        ck.fail("the fixture's sys._debugmallocstats() has no pymalloc part",
                open(os.path.join(fx.dir, "mallocstats.txt")).read()[:2000])
        return
    for key in ("arenas", "used_bytes", "free_bytes", "pools_empty",
                "pool_header_bytes", "quantization_bytes",
                "alignment_bytes"):
        ck.ok(p.get(key) == st.get(key), "pymalloc %s: %s, truth %s"
              % (key, p.get(key), st.get(key)))
    # The fixture frees a burst of arenas first: the three counters
    # differ, so one read from the wrong place shows.
    for key, truth in (("arenas_allocated_total", "arenas_total"),
                       ("arenas_highwater", "arenas_highwater")):
        ck.ok(p.get(key) == st.get(truth), "pymalloc %s: %s, truth %s"
              % (key, p.get(key), st.get(truth)))
    ck.ok(p["arena_bytes"] == st["arenas"] * p["arena_size"],
          "pymalloc arena bytes = arenas * arena size")
    got = {c["size"]: (c["pools"], c["blocks_used"], c["blocks_free"])
           for c in p.get("classes", [])}
    bad = ["size %d: %s, truth %s" % (s, got.get(s), v)
           for s, v in sorted(st["classes"].items()) if got.get(s) != v]
    bad += ["size %d: %s, not in the truth" % (s, v)
            for s, v in sorted(got.items()) if s not in st["classes"]]
    ck.ok(st["classes"] and not bad, "pymalloc: %d size classes exactly"
          % len(st["classes"]), "\n".join(bad[:20]))
    # The fixture pins arenas with a few survivors: that shows.
    ck.ok(0 < p["fragmentation"] < 1 and p["sparse_arenas"] >= 1,
          "fragmentation stated (%.0f%% free, %d sparse arenas)"
          % (100 * p["fragmentation"], p["sparse_arenas"]))


PYMALLOC_KEYS = ("arenas", "arenas_allocated_total", "arenas_highwater",
                 "arena_bytes", "pools_used", "pools_empty", "used_bytes",
                 "free_bytes", "empty_pool_bytes", "pool_header_bytes",
                 "quantization_bytes", "alignment_bytes", "sparse_arenas",
                 "bad_pools", "classes")


def check_forced_scan(ck, fx, args, doc, label):
    """A 3.8-3.11 read by symbols: the scan, forced, finds the same state."""
    os.environ["PYX_TEST_PYMALLOC_SCAN"] = "1"
    try:
        r = T.pyxray(args.pyxray, "memory", fx.pid, "--no-objects", "--json",
                     "--classes", "--top", "0", timeout=120)
    finally:
        del os.environ["PYX_TEST_PYMALLOC_SCAN"]
    if not ck.ok(r.rc == 0, "pyxray memory with the scan forced exits 0",
                 r.describe()):
        return
    scan = r.json()["pymalloc"]
    if scan.get("method") == "symbols":
        T.log("SKIP PART: the forced signature scan on %s: pyxray was built "
              "without PYX_TEST_HOOKS" % label)
        return
    sym = doc["pymalloc"]
    check_pymalloc(ck, fx, {"pymalloc": scan}, label, "signature scan")
    diff = ["%s: scan %s, symbols %s" % (k, str(scan.get(k))[:200],
                                          str(sym.get(k))[:200])
            for k in PYMALLOC_KEYS if scan.get(k) != sym.get(k)]
    ck.ok(not diff, "the forced scan's figures are the symbols' (%d keys)"
          % len(PYMALLOC_KEYS), "\n".join(diff))


def check_malloc(ck, fx, doc):
    m = doc["malloc"]
    mi = fx.mallinfo
    t = fx.truth
    if not ck.ok(m["available"], "glibc malloc read (%s)" % m.get("method"),
                 str(m.get("why"))):
        return
    ck.ok(near(m["arena_bytes"], mi["arena"], 0.02, 256 << 10),
          "malloc arena bytes %d, mallinfo2 %d" % (m["arena_bytes"],
                                                  mi["arena"]))
    ck.ok(near(m["in_use_bytes"], mi["uordblks"], 0.02, 256 << 10),
          "malloc in use %d, mallinfo2 %d" % (m["in_use_bytes"],
                                             mi["uordblks"]))
    ck.ok(near(m["free_bytes"], mi["fordblks"], 0, 512 << 10),
          "malloc free %d, mallinfo2 %d" % (m["free_bytes"], mi["fordblks"]))
    ck.ok(m["in_use_bytes"] >= t["small_bytes"] + t["thread_malloc_bytes"],
          "malloc in use holds the fixture's small blocks")
    if m["mmapped_bytes"] is None:
        T.log("SKIP PART: mallinfo2's mmapped figures: mp_ not found (%s)"
              % m["method"])
    else:
        ck.ok(near(m["mmapped_bytes"], mi["hblkhd"], 0.02, 256 << 10),
              "malloc mmapped %d, mallinfo2 %d" % (m["mmapped_bytes"],
                                                  mi["hblkhd"]))
        ck.ok(m["mmapped_blocks"] == mi["hblks"], "mmapped blocks %d, "
              "mallinfo2 %d" % (m["mmapped_blocks"], mi["hblks"]))
    ck.ok(len(m["arenas"]) >= 2 and m["arenas"][0]["main"],
          "the main arena and the malloc'ing thread's (%d arenas)"
          % len(m["arenas"]))
    ck.ok(sum(a["system_bytes"] for a in m["arenas"]) == m["arena_bytes"],
          "arenas add up")


def read_smaps(pid):
    """(start, end, perms, path, rss) of each mapping of /proc/PID/smaps."""
    out = []
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+ ?(.*)$",
                         line.rstrip("\n"))
            if m:
                out.append([int(m.group(1), 16), int(m.group(2), 16),
                            m.group(3), m.group(4).strip(), 0])
            elif out and line.startswith("Rss:"):
                out[-1][4] = int(line.split()[1]) * 1024
    return out


def is_shmem(perms, path):
    return ((perms[3] == "s" and (not path or path.startswith("/dev/zero")))
            or path.startswith(("/dev/shm/", "/memfd:", "/SYSV")))


def check_smaps_truth(ck, fx, doc):
    """What pyxray read through the target equals the kernel's smaps."""
    mp = doc["mappings"]
    v = read_smaps(fx.pid)
    rss = sum(m[4] for m in v)
    files = sum(m[4] for m in v if m[3] and not m[3].startswith("[")
                and not is_shmem(m[2], m[3]))
    special = sum(m[4] for m in v if m[3].startswith("[")
                  and m[3] not in ("[stack]", "[heap]"))
    ck.ok(mp["resident_exact"], "the page map was read (resident_exact)")
    ck.ok(near(doc["rss_bytes"], rss, 0.01, 256 << 10),
          "RSS %d, the kernel's smaps %d" % (doc["rss_bytes"], rss))
    ck.ok(near(mp["file_rss_bytes"], files, 0.01, 256 << 10),
          "file mappings %d, the kernel's smaps %d"
          % (mp["file_rss_bytes"], files))
    ck.ok(mp["special_rss_bytes"] == special, "special mappings %d, the "
          "kernel's smaps %d" % (mp["special_rss_bytes"], special))


def check_maps(ck, fx, doc):
    mp = doc["mappings"]
    t = fx.truth
    if not ck.ok(mp["available"], "smaps placed", str(mp.get("why"))):
        return
    check_smaps_truth(ck, fx, doc)
    rss = doc["rss_bytes"]
    want = t["smaps_rollup"]["Rss"]
    ck.ok(near(rss, want, 0.05, 1 << 20), "RSS %d, smaps_rollup %d"
          % (rss, want))
    ck.ok(mp["malloc_mmap_rss_bytes"] >= 0.95 * t["large_bytes"],
          "large C blocks placed as mmapped (%d >= %d)"
          % (mp["malloc_mmap_rss_bytes"], t["large_bytes"]))
    ck.ok(mp["malloc_heap_rss_bytes"] >= t["small_bytes"],
          "small C blocks in the malloc heaps")
    if doc["pymalloc"]["available"]:
        ck.ok(mp["pymalloc_rss_bytes"] > 0, "pymalloc arenas resident")
    mapped = os.path.realpath(t["mapped_file"])
    files = {os.path.basename(f["path"]): f for f in mp["files"]}
    f = files.get(os.path.basename(mapped))
    ck.ok(f is not None and f["rss_bytes"] >= 0.9 * t["mapped_file_size"],
          "the mapped file by name, resident", json.dumps(mp["files"])[:1500])
    spans = [(int(s["start"], 16), int(s["end"], 16)) for s in mp["stacks"]]
    missing = [st for st in t["stacks"] if st and not any(
        a < st[1] and st[0] < b for a, b in spans)]
    nthreads = sum(max(s["threads"], 1) for s in mp["stacks"])
    ck.ok(nthreads >= t["nthreads"] and not missing,
          "a stack for each of the %d threads" % t["nthreads"],
          "missing %s in %s" % (missing, spans))
    parts = sum(mp[k] for k in (
        "pymalloc_rss_bytes", "malloc_heap_rss_bytes", "malloc_mmap_rss_bytes",
        "stack_rss_bytes", "file_rss_bytes", "shmem_rss_bytes",
        "special_rss_bytes", "anon_other_rss_bytes"))
    ck.ok(parts == rss, "the parts add up to the RSS (%d, %d)" % (parts, rss))
    if not doc["pymalloc"]["available"]:
        # Its arenas are anonymous memory nothing else claims.
        T.log("SKIP PART: at most a tenth of the RSS unexplained: pymalloc "
              "unread (%.1f%% unexplained)" % (100 * doc["unexplained_share"]))
        return
    ck.ok(doc["unexplained_bytes"] <= rss / 10, "unexplained %d: at most a "
          "tenth of the RSS (%.1f%%)" % (doc["unexplained_bytes"],
                                         100 * doc["unexplained_share"]))


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    version = T.check_target_python(args.python)
    spec = T.spec(args.python)
    label = spec.label() if spec else args.python
    ck = T.Checker("memory on %s" % label)
    fx = MemoryFixture(args.python)
    try:
        r = T.pyxray(args.pyxray, "memory", fx.pid, "--json", "--classes",
                     "--top", "0", timeout=120)
        if not ck.ok(r.rc == 0, "pyxray memory --json exits 0", r.describe()):
            return ck.finish()
        doc = r.json()
        ck.ok(doc["pid"] == fx.pid and doc["python_version"] == version,
              "pid and version")
        ck.ok(0 < doc["pause_ms"] < 5000, "pause reported (%.1f ms)"
              % doc["pause_ms"])
        py = doc["python"]
        if py["available"]:
            ck.ok(py["objects_bytes"] >= fx.truth["python_survivor_bytes"],
                  "Python objects: %d bytes >= the survivors' %d"
                  % (py["objects_bytes"], fx.truth["python_survivor_bytes"]))
        else:
            T.log("SKIP PART: Python objects: %s" % py["why"])
        method = expected_method(args.python, version)
        check_pymalloc(ck, fx, doc, label, method)
        if method == "symbols" and doc["pymalloc"]["available"]:
            check_forced_scan(ck, fx, args, doc, label)
        check_malloc(ck, fx, doc)
        check_maps(ck, fx, doc)
        ck.ok(fx.proc.poll() is None and
              T.thread_states(fx.pid) and
              all(s[0] != "t" for s in T.thread_states(fx.pid).values()),
              "the target is running again, not stopped")
        t = T.pyxray(args.pyxray, "memory", fx.pid, "--no-objects",
                     "--classes", timeout=60)
        ck.ok(t.rc == 0 and "pymalloc" in t.out and "glibc malloc" in t.out
              and "unexplained" in t.out, "text output", t.describe())
    finally:
        fx.stop()
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
