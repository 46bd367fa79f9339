#!/usr/bin/env python3
"""pyxray watch against fixtures/watch_target.py, one Python.

Five fixtures run side by side, one per memory pattern (leak, sawtooth,
surge, early-growth, flat), each recording its own truth in-process
(gc.get_objects() counts of its classes at every step, with times).  For
each, 'pyxray watch --json' samples it every 0.15 s; the fixture starts its
pattern when pyxray has printed its first sample.  Checks:
  - the JSON schema of every sample line and of the summary line;
  - the summary's pattern is the fixture's;
  - leak: __main__.Leaky is named a leak, its rate within 15% of the
    truth's (least squares over the truth's steps in the window), its last
    count the truth's at that time; who holds it: the objects born during
    the watch are held by the global LEAK, not by OLD (which holds 3000
    older ones of the same type), and the newborn count fits the truth;
  - the healthy shapes: no leak named at all; OLD's Leaky objects never
    counted as growing;
  - memory by category (each sample also places the RSS as 'pyxray memory'
    does): every sample carries the categories and both pauses, and no
    pattern above is blamed on C.
Then fixtures/watch_cleak_target.py, twice side by side, recording its own
truth (mallinfo2() through ctypes at every step, with times):
  - C: 1 MiB/s through libc's malloc (half in 512-byte blocks, half in
    160 KiB mmapped ones), never freed, Python objects flat: glibc malloc
    in use and its mmapped bytes named as growing at the truth's rates
    (within 20%), the last sample's figures the truth's at that moment,
    the Python objects flat, no type leaking, and the verdict "c" (a leak
    in C, not in Python objects);
  - Python: Leaky objects kept in a list: the Python objects a leak, the
    verdict "python", never C.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402

TARGET = os.path.join(T.FIXTURES, "watch_target.py")
CLEAK_TARGET = os.path.join(T.FIXTURES, "watch_cleak_target.py")
PATTERNS = ("leak", "sawtooth", "surge", "early-growth", "flat")
LEAKY = "__main__.Leaky"
INTERVAL = 0.15
COUNT = 32

SAMPLE_KEYS = ("sample", "t", "time", "rss_bytes", "arena_bytes", "objects",
               "bytes", "gc_objects", "gc_bytes", "pause_ms", "walk_ms",
               "census_pause_ms", "memory", "interval_s", "partial",
               "nchanged", "changed")
SUMMARY_KEYS = ("summary", "pid", "python_version", "samples", "duration_s",
                "interval_s", "pattern", "rss_pattern", "heap", "growing",
                "leaks", "holders", "ended", "error", "pause_ms_max",
                "pause_share", "memory")
CATEGORIES = ("python_objects", "pymalloc_arenas", "pymalloc_used",
              "pymalloc_free", "pymalloc_empty_pools", "malloc_in_use",
              "malloc_free", "malloc_mmapped", "thread_stacks", "mapped_files",
              "shared_memory", "unexplained")
MEMORY_KEYS = ("followed", "off", "error", "placed", "place", "verdict",
               "categories", "c")
GROWING_KEYS = ("type", "count_per_s", "bytes_per_s", "first", "last", "leak")


class WatchFixture(object):
    """watch_target.py with one pattern, and the control directory."""

    def __init__(self, python, pattern, timeout=60, target=TARGET,
                 args=None):
        self.pattern = pattern
        self.dir = T.tmpdir()
        self.log_path = os.path.join(self.dir, "fixture.log")
        self.logf = open(self.log_path, "w")
        self.proc = T.spawn([python, target, self.dir] +
                            (args if args is not None else
                             ["--pattern", pattern]) + ["--lifetime", "90"],
                            stdout=self.logf, stderr=T.subprocess.STDOUT)
        self.pid = self.proc.pid
        self.timeout = timeout
        self.truth = None

    def wait_ready(self):
        deadline = time.monotonic() + self.timeout
        while not os.path.exists(os.path.join(self.dir, "ready")):
            if self.proc.poll() is not None:
                raise RuntimeError("fixture exited %s: %s"
                                   % (self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                raise RuntimeError("fixture not ready in %d s" % self.timeout)
            time.sleep(0.02)

    def touch(self, name):
        tmp = os.path.join(self.dir, name + ".tmp")
        with open(tmp, "w") as f:
            f.write("1")
        os.rename(tmp, os.path.join(self.dir, name))

    def dump(self, timeout=20):
        self.touch("dump")
        deadline = time.monotonic() + timeout
        while not os.path.exists(os.path.join(self.dir, "dumped")):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("fixture wrote no truth: %s" % self.log())
            time.sleep(0.02)
        with open(os.path.join(self.dir, "truth.json")) as f:
            self.truth = json.load(f)
        return self.truth

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        T.kill_child(self.proc)
        self.logf.close()


class Watch(object):
    """pyxray watch PID --json ..., read line by line."""

    def __init__(self, pyxray, pid, args):
        self.argv = [pyxray, "watch", str(pid), "--json"] + [str(a) for a in args]
        # Unbuffered: readline() must not read ahead what communicate()
        # (which reads the file descriptor) would then miss.
        self.proc = T.spawn(self.argv, stdout=T.subprocess.PIPE,
                            stderr=T.subprocess.PIPE, bufsize=0)
        self.lines = []

    def first_line(self, timeout=60):
        # The first census of a cold process can take a while (DWARF).
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("pyxray printed nothing: %s"
                               % self.proc.stderr.read().decode("utf-8", "replace"))
        self.lines.append(line.decode("utf-8"))
        return json.loads(self.lines[0])

    def finish(self, timeout=180):
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except T.subprocess.TimeoutExpired:
            T.kill_child(self.proc)
            raise RuntimeError("pyxray watch did not end in %d s" % timeout)
        self.rc = self.proc.returncode
        self.err = err.decode("utf-8", "replace")
        self.lines += out.decode("utf-8").splitlines()
        self.docs = [json.loads(l) for l in self.lines if l.strip()]
        self.samples = [d for d in self.docs if not d.get("summary")]
        self.summary = self.docs[-1] if self.docs and \
            self.docs[-1].get("summary") else None
        if self.proc in T._children:
            T._children.remove(self.proc)
        return self


def check_schema(ck, label, w, count):
    bad = []
    for i, s in enumerate(w.samples):
        missing = [k for k in SAMPLE_KEYS if k not in s]
        if missing:
            bad.append("sample %d lacks %s" % (i + 1, missing))
            continue
        if s["sample"] != i + 1:
            bad.append("sample %d numbered %s" % (i + 1, s["sample"]))
        if i and not s["t"] > w.samples[i - 1]["t"]:
            bad.append("sample %d: t does not increase" % (i + 1))
        if not (s["pause_ms"] >= 0 and s["objects"] > 0 and s["bytes"] > 0):
            bad.append("sample %d: bad numbers %s" % (i + 1, s))
        # Both stops: the census's and the allocators'.
        if not 0 <= s["census_pause_ms"] < s["pause_ms"]:
            bad.append("sample %d: pause %s ms, census's %s ms"
                       % (i + 1, s["pause_ms"], s["census_pause_ms"]))
        mem = s["memory"]
        if not isinstance(mem, dict) or sorted(mem) != sorted(CATEGORIES) or \
                mem["python_objects"] != s["bytes"] or \
                any(v is not None and (not isinstance(v, int) or v < 0)
                    for v in mem.values()):
            bad.append("sample %d: memory %s" % (i + 1, mem))
        for c in s["changed"]:
            if set(c) != {"type", "count", "delta", "bytes", "delta_bytes"}:
                bad.append("sample %d: changed entry %s" % (i + 1, c))
    ck.ok(not bad and len(w.samples) == count,
          "%s: %d sample lines, each with the schema" % (label, len(w.samples)),
          "\n".join(bad[:10] + ["numbers: %s" % [s.get("sample")
                                                 for s in w.samples],
                                 "stderr: %s" % w.err[:1000]]))
    sm = w.summary
    ck.ok(sm is not None and all(k in sm for k in SUMMARY_KEYS) and
          all(all(k in g for k in GROWING_KEYS) for g in sm["growing"]) and
          sm["samples"] == count and sm["ended"] == "count" and
          all(k in sm["memory"] for k in MEMORY_KEYS) and
          sm["memory"]["followed"] and sm["memory"]["placed"] == count and
          sorted(sm["memory"]["categories"]) == sorted(CATEGORIES),
          "%s: the summary line has the schema" % label,
          json.dumps(sm)[:1500] if sm else w.err)


def truth_rate(truth, name, t0, t1):
    """Least-squares slope of the truth's count of name over [t0, t1]."""
    pts = [(t, c) for t, c in zip(truth["times"], truth["counts"][name])
           if t0 - 0.05 <= t <= t1 + 0.05]
    if len(pts) < 3:
        return None, pts
    mt = sum(p[0] for p in pts) / len(pts)
    mc = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mt) ** 2 for p in pts)
    sxy = sum((p[0] - mt) * (p[1] - mc) for p in pts)
    return sxy / sxx, pts


def truth_at(truth, name, t):
    best = min(range(len(truth["times"])),
               key=lambda i: abs(truth["times"][i] - t))
    return truth["counts"][name][best], truth["times"][best]


def truth_interp(truth, name, t):
    ts, cs = truth["times"], truth["counts"][name]
    for i in range(1, len(ts)):
        if ts[i - 1] <= t <= ts[i]:
            f = (t - ts[i - 1]) / (ts[i] - ts[i - 1]) if ts[i] > ts[i - 1] else 0
            return round(cs[i - 1] + f * (cs[i] - cs[i - 1]))
    return None


def growing(sm, name):
    for g in sm["growing"]:
        if g["type"] == name:
            return g
    return None


def check_leak(ck, label, w, truth):
    sm = w.summary
    t0, t1 = w.samples[0]["time"], w.samples[-1]["time"]
    g = growing(sm, LEAKY)
    ck.ok(LEAKY in sm["leaks"] and g is not None and g["leak"],
          "%s: %s named a leak" % (label, LEAKY), json.dumps(sm["growing"])[:800])
    if g is None:
        return
    # The rate over the part of the window where the pattern ran (the
    # first sample comes before go).
    rate, pts = truth_rate(truth, LEAKY, max(t0, truth["go"]), t1)
    ck.ok(rate is not None and abs(g["count_per_s"] - rate) <= 0.15 * rate,
          "%s: rate %.1f/s, truth %.1f/s (within 15%%)"
          % (label, g["count_per_s"], rate or 0))
    # A sample's time is the middle of its pause: the heap it counts is
    # that of a moment within half the pause of it (and the fixture's steps
    # run late on a loaded host).
    pause = w.samples[-1].get("census_pause_ms",
                              w.samples[-1]["pause_ms"]) / 1e3
    lo = truth_interp(truth, LEAKY, t1 - pause / 2 - 0.25)
    hi = truth_interp(truth, LEAKY, t1 + pause / 2 + 0.25)
    ck.ok(lo is not None and hi is not None and lo - 2 <= g["last"] <= hi + 2,
          "%s: last count %d, truth %s to %s over the census's pause"
          % (label, g["last"], lo, hi))
    first, _ = truth_at(truth, LEAKY, t0)
    ck.ok(g["first"] == truth["old_leaky"] == first,
          "%s: first count %d: the %d older objects (truth %d)"
          % (label, g["first"], truth["old_leaky"], first))
    hs = [h for h in sm["holders"] if h["type"] == LEAKY]
    ck.ok(len(hs) == 1 and hs[0]["paths"], "%s: who holds %s is traced"
          % (label, LEAKY), json.dumps(sm["holders"])[:1500])
    if not hs or not hs[0]["paths"]:
        return
    h = hs[0]
    top = max(h["paths"], key=lambda p: p["count"])
    edges = [st["edge"] for st in top["path"]]
    ck.ok(any("'LEAK'" in e for e in edges) and
          not any("'OLD'" in e for e in edges) and
          top["count"] == h["traced"],
          "%s: every traced newborn held by the global LEAK, not OLD (%s)"
          % (label, " <- ".join(edges)))
    grown = g["last"] - g["first"]
    ck.ok(0.5 * grown <= h["newborn"] <= h["count"] - truth["old_leaky"] + 2,
          "%s: %d newborn of %d (grown %d during the watch, %d older)"
          % (label, h["newborn"], h["count"], grown, truth["old_leaky"]))


def check_healthy(ck, label, w, truth):
    sm = w.summary
    ck.ok(sm["leaks"] == [], "%s: no leak named" % label,
          json.dumps([g for g in sm["growing"] if g["leak"]])[:800])
    g = growing(sm, LEAKY)
    ck.ok(g is None, "%s: the older Leaky objects are not growing" % label,
          json.dumps(g))


def summary_memory(ck, label, w):
    m = w.summary.get("memory")
    if not isinstance(m, dict) or not all(k in m for k in MEMORY_KEYS):
        ck.fail("%s: the summary has memory by category" % label,
                json.dumps(m)[:500])
        return None
    return m


def check_not_c(ck, label, w):
    m = summary_memory(ck, label, w)
    if m is None:
        return
    ck.ok(m["place"] not in ("c", "python-and-c"),
          "%s: not blamed on C (place %s)" % (label, m["place"]),
          "%s\n%s" % (m["verdict"], json.dumps(m["categories"])[:1200]))


CLEAK_MODES = ("c", "python")
CLEAK_COUNT = 24


def slope(pts):
    """Least-squares slope of [(t, y)]."""
    mt = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mt) ** 2 for p in pts)
    return sum((p[0] - mt) * (p[1] - my) for p in pts) / sxx if sxx else 0


def truth_window(truth, key, t0, t1):
    return [(t, v) for t, v in zip(truth["times"], truth[key])
            if t0 - 0.05 <= t <= t1 + 0.05]


def check_cleak(ck, label, w, truth):
    sm = w.summary
    m = summary_memory(ck, label, w)
    if m is None:
        return
    cats = m["categories"]
    info = "verdict: %s\ncategories: %s" % (m["verdict"],
                                            json.dumps(cats)[:1500])
    T.log("  info %s: %s" % (label, m["verdict"]))
    t0, t1 = w.samples[0]["time"], w.samples[-1]["time"]
    lo = max(t0, truth["go"])
    if truth["mode"] == "python":
        ck.ok(m["place"] == "python" and cats["python_objects"]["leak"],
              "%s: the Python objects leak, place 'python' (%s)"
              % (label, m["place"]), info)
        return
    if not truth["mallinfo2"]:
        T.log("  info %s: NOT CHECKED: the rates (no mallinfo2 in this "
              "glibc: no truth)" % label)
    ck.ok(m["place"] == "c" and "a leak in C" in m["verdict"],
          "%s: place 'c': a leak in C, not in Python objects (%s)"
          % (label, m["place"]), info)
    ck.ok(cats["python_objects"]["known"] and
          cats["python_objects"]["pattern"] == "flat" and sm["leaks"] == [],
          "%s: the Python objects flat (%s), no type leaking (%s)"
          % (label, cats["python_objects"].get("pattern"), sm["leaks"]), info)
    if not truth["mallinfo2"]:
        return
    # The truth's rates over the part of the window where it grew.
    tin = truth_window(truth, "in_use", lo, t1)
    tmm = truth_window(truth, "mmapped", lo, t1)
    r_in, r_mm = slope(tin), slope(tmm)
    r_c = slope([(a[0], a[1] + b[1]) for a, b in zip(tin, tmm)])
    c = m["c"]
    ck.ok(c and c["leak"] and abs(c["bytes_per_s"] - r_c) <= 0.2 * r_c,
          "%s: glibc malloc in use + mmapped grows %.0f KiB/s, truth %.0f "
          "KiB/s (within 20%%)" % (label, (c or {}).get("bytes_per_s", 0) /
                                   1024, r_c / 1024), info)
    for key, rate, what in (("malloc_in_use", r_in, "in use"),
                            ("malloc_mmapped", r_mm, "mmapped")):
        x = cats[key]
        if not x["known"]:
            T.log("  info %s: NOT CHECKED: malloc %s: %s"
                  % (label, what, x.get("why")))
            continue
        ck.ok(x["leak"] and abs(x["bytes_per_s"] - rate) <= 0.2 * rate,
              "%s: glibc malloc %s a leak at %.0f KiB/s, truth %.0f KiB/s "
              "(within 20%%)" % (label, what, x["bytes_per_s"] / 1024,
                                 rate / 1024), info)
        # The last sample's figure: the truth's at that moment (the
        # allocators are read right after the census's stop).
        s = w.samples[-1]
        tm = s["time"]
        near = [v for t, v in zip(truth["times"], truth[key[7:] if
                                  key == "malloc_in_use" else "mmapped"])
                if tm - 0.25 <= t <= tm + s["pause_ms"] / 1e3 + 0.25]
        v = s["memory"][key]
        ck.ok(near and min(near) - 65536 <= v <= max(near) + 65536,
              "%s: the last sample's malloc %s %d, truth %s to %s"
              % (label, what, v, min(near) if near else None,
                 max(near) if near else None))


def run_cleak(ck, args, version):
    fixtures, watches = {}, {}
    try:
        for mode in CLEAK_MODES:
            fixtures[mode] = WatchFixture(args.python, "cleak-" + mode,
                                          target=CLEAK_TARGET,
                                          args=["--mode", mode])
        for mode in CLEAK_MODES:
            fixtures[mode].wait_ready()
        for mode in CLEAK_MODES:
            watches[mode] = Watch(args.pyxray, fixtures[mode].pid,
                                  ["--interval", INTERVAL, "--count",
                                   CLEAK_COUNT, "--pause-budget", 0,
                                   "--holders", 0])
        for mode in CLEAK_MODES:
            watches[mode].first_line()
            fixtures[mode].touch("go")
        for mode in CLEAK_MODES:
            watches[mode].finish()
        time.sleep(0.6)
        for mode in CLEAK_MODES:
            w = watches[mode]
            truth = fixtures[mode].dump()
            label = "%s leak (%s)" % (mode, version)
            if not ck.ok(w.rc == 0 and w.summary is not None,
                         "%s: watch ended with its summary, exit 0" % label,
                         "rc %s, stderr: %s" % (w.rc, w.err[:1500])):
                continue
            check_schema(ck, label, w, CLEAK_COUNT)
            check_cleak(ck, label, w, truth)
            if mode == "python":
                check_not_c(ck, label, w)
    finally:
        for f in fixtures.values():
            f.stop()


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    version = T.check_target_python(args.python)
    ck = T.Checker("watch %s" % args.python)
    fixtures, watches = {}, {}
    try:
        for p in PATTERNS:
            fixtures[p] = WatchFixture(args.python, p)
        for p in PATTERNS:
            fixtures[p].wait_ready()
        for p in PATTERNS:
            extra = ["--holders", "2", "--examples", "2"] if p == "leak" \
                else ["--holders", "0"]
            watches[p] = Watch(args.pyxray, fixtures[p].pid,
                               ["--interval", INTERVAL, "--count", COUNT,
                                "--pause-budget", 0] + extra)
        for p in PATTERNS:
            watches[p].first_line()
            fixtures[p].touch("go")
        for p in PATTERNS:
            w = watches[p].finish()
        # The truth must reach past the last sample's pause.
        time.sleep(0.6)
        for p in PATTERNS:
            w = watches[p]
            fixtures[p].dump()
            label = "%s (%s)" % (p, version)
            ok = ck.ok(w.rc == 0 and w.summary is not None,
                       "%s: watch ended with its summary, exit 0" % label,
                       "rc %s, stderr: %s" % (w.rc, w.err[:1500]))
            if not ok:
                continue
            check_schema(ck, label, w, COUNT)
            sm = w.summary
            gaps = sorted(b["t"] - a["t"] for a, b in zip(w.samples,
                                                          w.samples[1:]))
            per_tooth = fixtures[p].truth["period"] / gaps[len(gaps) // 2]
            if p == "sawtooth" and per_tooth < 4:
                # A loaded host (or a sanitizer build) stretched the
                # interval: with fewer than 4 samples a tooth, teeth cannot
                # be told from noise (docs/watch.md).  Not a pass of the
                # shape check: said so.
                T.log("  info %s: NOT CHECKED: the shape (%.1f samples a "
                      "tooth, fewer than 4: the host is too loaded); read as "
                      "%s" % (label, per_tooth, sm["pattern"]))
                check_healthy(ck, label, w, fixtures[p].truth)
                continue
            ck.ok(sm["pattern"] == p, "%s: pattern %s (expected %s)"
                  % (label, sm["pattern"], p),
                  "heap %s; growing %s\n  samples (t, bytes, pause_ms): %s"
                  % (json.dumps(sm["heap"]), json.dumps(sm["growing"][:4]),
                     " ".join("%.2f:%d:%.0f" % (x["t"], x["bytes"],
                                                x["pause_ms"])
                              for x in w.samples)))
            T.log("  info %s: pauses max %.1f ms, share %.2f%%; heap %s"
                  % (p, sm["pause_ms_max"], 100 * sm["pause_share"],
                     json.dumps(sm["heap"])))
            if p == "leak":
                check_leak(ck, label, w, fixtures[p].truth)
            else:
                check_healthy(ck, label, w, fixtures[p].truth)
            check_not_c(ck, label, w)
            if T.wait_all_running(fixtures[p].pid):
                ck.fail("%s: the target was left stopped" % label)
    except RuntimeError as e:
        ck.fail("run: %s" % e)
    finally:
        for f in fixtures.values():
            f.stop()
    try:
        run_cleak(ck, args, version)
    except RuntimeError as e:
        ck.fail("run (C leak): %s" % e)
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
