#!/usr/bin/env python3
"""pyxray allocs against fixtures/allocs_target.py, one Python.

The fixture runs tracemalloc.start(5), leaks at known lines of a module of
its own (leaks.py: nothing else runs there), and writes the in-process truth
right after: tracemalloc.take_snapshot().statistics() by 'lineno',
'filename' and 'traceback', and get_traced_memory().  Checked:
  - every group of leaks.py, by each key: size and count exactly (the line
    two callers reach: two tracebacks; a line that freed what it allocated:
    no group; C blocks traced in domain 7 through PyTraceMalloc_Track());
  - the traced total: the traces pyxray read sum to the target's own
    counter exactly (every table read whole), and that counter is within
    16 KiB of get_traced_memory() taken as the fixture's last act before it
    idles (what writing that last file leaves: measured 2 KiB);
  - --save at two moments, then 'pyxray diff A B --by K' equals
    Snapshot.compare_to() on leaks.py's traces, size and count deltas;
  - the target runs again afterwards;
  - without tracemalloc: the message and exit 17 (not supported), and
    --sample names the line that grows the RSS (a fixture that allocates on
    one line and frees on another) as an estimate with its sample count.
A build without the symbols of 3.8-3.11's static tables (a stripped
interpreter with no debug file) must say so (exit 17): a named partial
skip; the sampling part is still checked.
"""

import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402

TARGET = os.path.join(T.FIXTURES, "allocs_target.py")
KEYS = ("lineno", "filename", "traceback")
TOTAL_SLACK = 16 << 10


class AllocsFixture(object):
    def __init__(self, python, mode="leak", timeout=60):
        self.dir = T.tmpdir()
        self.log_path = os.path.join(self.dir, "fixture.log")
        self.logf = open(self.log_path, "w")
        self.proc = T.spawn([python, TARGET, self.dir, "--mode", mode,
                             "--lifetime", "200"],
                            stdout=self.logf, stderr=T.subprocess.STDOUT)
        self.pid = self.proc.pid
        self.timeout = timeout

    def wait(self, name):
        path = os.path.join(self.dir, name)
        deadline = time.monotonic() + self.timeout
        while not os.path.exists(path):
            if self.proc.poll() is not None:
                raise RuntimeError("fixture exited %s: %s"
                                   % (self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                raise RuntimeError("fixture: no %s in %d s" % (name,
                                                              self.timeout))
            time.sleep(0.05)
        with open(path) as f:
            return json.load(f)

    def read(self, name):
        with open(os.path.join(self.dir, name)) as f:
            return json.load(f)

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        T.kill_child(self.proc)
        self.logf.close()


def key_of(s, key):
    frames = tuple((f["file"], f["line"]) for f in s["traceback"])
    return (s["file"], s["line"] if key != "filename" else 0,
            frames if key == "traceback" else ())


def ours(sites, key, leaks):
    return {key_of(s, key): s for s in sites if s["file"] == leaks}


def compare_groups(ck, what, got, want, fields):
    bad = []
    for k in sorted(set(got) | set(want), key=repr):
        g, w = got.get(k), want.get(k)
        gv = tuple(g[f] for f in fields) if g else None
        wv = tuple(w[f] for f in fields) if w else None
        if gv != wv:
            bad.append("%s:%s%s: pyxray %s, truth %s" % (
                os.path.basename(k[0] or "-"), k[1],
                " (%d frames)" % len(k[2]) if k[2] else "", gv, wv))
    ck.ok(want and not bad, "%s: %d groups of leaks.py exactly (%s)"
          % (what, len(want), "/".join(fields)), "\n".join(bad[:12]))


def allocs_json(ck, pyx, pid, *args):
    r = T.pyxray(pyx, "allocs", pid, "--json", "--top", "0", *args,
                 timeout=60)
    if not ck.ok(r.rc == 0, "pyxray allocs --json %s exits 0"
                 % " ".join(args), r.describe()):
        return None
    return r.json()


def check_phase(ck, pyx, fx, truth, done, version, phase, save):
    leaks = fx.truth1["leaks"]
    lines = fx.truth1["lines"]
    docs = {}
    for key in KEYS:
        extra = ("--save", save) if key == "lineno" else ()
        doc = allocs_json(ck, pyx, fx.pid, "--by", key, *extra)
        if doc is None:
            return False
        docs[key] = doc
        compare_groups(ck, "phase %d by %s" % (phase, key),
                       ours(doc["sites"], key, leaks),
                       ours(truth["stats"][key], key, leaks),
                       ("bytes", "count"))
    doc = docs["lineno"]
    ck.ok(doc["pid"] == fx.pid and doc["python_version"] == version and
          doc["tracemalloc"] is True and doc["traceback_limit"] == 5,
          "pid, version, tracemalloc, traceback limit")
    ck.ok(0 < doc["pause_ms"] < 5000, "pause reported (%.1f ms)"
          % doc["pause_ms"])
    ck.ok(not doc["partial"] and doc["skipped"] == 0 and
          doc["traces_bytes"] == doc["traced_bytes"],
          "every trace read: they sum to the target's counter (%d, %d)"
          % (doc["traces_bytes"], doc["traced_bytes"]))
    ck.ok(abs(doc["traced_bytes"] - done["traced_now"]) <= TOTAL_SLACK,
          "traced %d, get_traced_memory() as the last act %d (within %d)"
          % (doc["traced_bytes"], done["traced_now"], TOTAL_SLACK))
    ck.ok(doc["peak_bytes"] >= truth["peak"], "peak %d >= the truth's %d"
          % (doc["peak_bytes"], truth["peak"]))
    sites = ours(doc["sites"], "lineno", leaks)
    ck.ok((leaks, lines["LINE_T"], ()) not in sites,
          "a line that freed what it allocated has no group")
    tb = ours(docs["traceback"]["sites"], "traceback", leaks)
    ck.ok(len([k for k in tb if k[1] == lines["LINE_B"]]) >= 2,
          "LINE_B, reached from two callers: a traceback each")
    if fx.truth1["tracked"]:
        ck.ok((leaks, lines["LINE_D"], ()) in sites and
              doc["domain_traces"] == 20,
              "PyTraceMalloc_Track()'s domain 7 traces read (%d)"
              % doc["domain_traces"])
    else:
        T.log("SKIP PART: PyTraceMalloc_Track() failed in the fixture")
    return True


def check_refs(ck, pyx, fx):
    """refs names where its example object was allocated: the 300
    bytearrays of LINE_A (no free list: each its own trace)."""
    r = T.pyxray(pyx, "refs", fx.pid, "--type", "bytearray", "--json",
                 timeout=120)
    if not ck.ok(r.rc == 0, "pyxray refs --type bytearray exits 0",
                 r.describe()):
        return
    groups = [g for g in r.json()["groups"] if g["count"] >= 300]
    want = {"file": fx.truth1["leaks"], "line": fx.truth1["lines"]["LINE_A"]}
    ck.ok(groups and groups[0].get("allocated_at") == want,
          "refs: the leaking bytearrays' group says allocated at LINE_A",
          json.dumps(groups[:1])[:800])


def check_tracemalloc(ck, pyx, python, version, has_symbols):
    fx = AllocsFixture(python)
    try:
        fx.truth1 = fx.wait("truth1.json")
        done1 = fx.wait("ready1")
        if fx.truth1["pid"] != T.ns_pid(fx.pid):
            raise RuntimeError("truth pid %s, child %d" % (fx.truth1["pid"],
                                                          fx.pid))
        r = T.pyxray(pyx, "allocs", fx.pid, timeout=60)
        if r.rc == T.EXIT["NOT_SUPPORTED"] and not has_symbols and \
                "symbol" in r.err:
            T.log("SKIP PART: tracemalloc's tables on %s: %s"
                  % (python, T.one_line_stderr(r)))
            ck.ok("tracemalloc is on" in r.err, "says tracemalloc is on "
                  "and why the traces cannot be read", r.describe())
            return
        leaks = fx.truth1["leaks"]
        ck.ok(r.rc == 0 and "%s:%d:" % (leaks, fx.truth1["lines"]["LINE_A"])
              in r.out and "Top 10 by lineno" in r.out, "text output",
              r.describe())
        save1 = os.path.join(fx.dir, "phase1.allocs")
        save2 = os.path.join(fx.dir, "phase2.allocs")
        if not check_phase(ck, pyx, fx, fx.truth1, done1, version, 1, save1):
            return
        check_refs(ck, pyx, fx)
        os.kill(fx.pid, signal.SIGUSR1)
        truth2 = fx.wait("truth2.json")
        done2 = fx.wait("ready2")
        if not check_phase(ck, pyx, fx, truth2, done2, version, 2, save2):
            return
        for key in KEYS:
            r = T.pyxray(pyx, "diff", save1, save2, "--json", "--by", key,
                         timeout=60)
            if not ck.ok(r.rc == 0, "pyxray diff --by %s exits 0" % key,
                         r.describe()):
                continue
            doc = r.json()
            got = {key_of(s, key): dict(s, dbytes=s["delta_bytes"],
                                        dcount=s["delta_count"])
                   for s in doc["sites"] if s["file"] == leaks}
            compare_groups(ck, "diff by %s = compare_to()" % key, got,
                           ours(truth2["compare"][key], key, leaks),
                           ("bytes", "count", "dbytes", "dcount"))
        r = T.pyxray(pyx, "diff", save1, save2, "--top", "3", timeout=60)
        ck.ok(r.rc == 0 and "Top 3 differences by lineno" in r.out,
              "diff text output", r.describe())
        ck.ok(fx.proc.poll() is None and T.thread_states(fx.pid) and
              all(s[0] != "t" for s in T.thread_states(fx.pid).values()),
              "the target is running again, not stopped")
    finally:
        fx.stop()


def check_without(ck, pyx, python):
    fx = AllocsFixture(python, mode="sample")
    try:
        truth = fx.wait("truth.json")
        fx.wait("ready")
        r = T.pyxray(pyx, "allocs", fx.pid, timeout=30)
        ck.ok(r.rc == T.EXIT["NOT_SUPPORTED"] and
              "tracemalloc is not tracing" in r.err and
              "PYTHONTRACEMALLOC" in r.err and "tracemalloc.start" in r.err,
              "tracemalloc off: the message and exit 17", r.describe())
        r = T.pyxray(pyx, "allocs", fx.pid, "--sample", "2.5",
                     "--interval-ms", "2", "--json", timeout=60)
        if not ck.ok(r.rc == 0, "allocs --sample exits 0", r.describe()):
            return
        doc = r.json()
        ck.ok(doc["estimate"] is True and doc["tracemalloc"] is False and
              doc["samples"] >= 100, "an estimate, with its sample count "
              "(%d)" % doc["samples"])
        grew = sorted(doc["lines"], key=lambda l: -l["grew"])
        top = grew[0] if grew else {}
        ck.ok(top.get("file") == truth["file"] and
              top.get("line") == truth["lines"]["LINE_ALLOC"],
              "the line that grows the RSS comes first (%s:%s, %d bytes)"
              % (os.path.basename(top.get("file") or "-"), top.get("line"),
                 top.get("grew", 0)),
              json.dumps(grew[:4]))
        ck.ok(fx.proc.poll() is None and
              all(s[0] != "t" for s in T.thread_states(fx.pid).values()),
              "the target was never left stopped")
    finally:
        fx.stop()


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    version = T.check_target_python(args.python)
    spec = T.spec(args.python)
    label = spec.label() if spec else args.python
    ck = T.Checker("allocs on %s" % label)
    has_symbols = T.has_dwarf(args.python)[0]
    check_tracemalloc(ck, args.pyxray, args.python, version, has_symbols)
    check_without(ck, args.pyxray, args.python)
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
