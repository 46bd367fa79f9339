#!/usr/bin/env python3
"""pyxray watch: exports and the ways a watch ends (one Python with DWARF).

  - --prometheus FILE: parsed by prometheus_client's parser (the Debian
    package python3-prometheus-client) when installed, else by the strict
    parser below (the text format's grammar); names and units after the
    conventions, a TYPE for every family, pid on every sample, the leaking
    type's count the summary's, the pattern one-hot, the type labels
    bounded by 2 x --top; no temporary file left behind;
  - memory by category there too: pyxray_memory_bytes{category=...} (each
    category's value the last sample's), its growth and leak gauges, the
    place one-hot (the fixture's leak is in Python objects: "python"),
    pyxray_census_pause_seconds;
  - --statsd 127.0.0.1:PORT: the datagrams received on a local UDP socket,
    every line a gauge "prefix.name:value|g" under --statsd-prefix, the
    leaking type's gauge rising, prefix.memory.CATEGORY.bytes in every
    sample equal to the JSON's;
  - --svg FILE: parsed as XML, an <svg> with the curves (polylines), the
    shape written, the leaking type in the legend, the memory panel with
    the categories and where it grows;
  - --no-categories: one stop a sample (pause_ms is the census's), no
    categories, the summary says they were not followed; a watch of a core
    file: the allocators' categories read from it, the mappings' said
    once on stderr (not a live process) and null in every sample;
  - Ctrl-C (SIGINT) in the middle of an unbounded watch: the summary is
    printed, "ended": "interrupted", exit 0, the target running and not
    traced;
  - the target exits mid-watch: the summary of the samples so far, "ended":
    "exited", a message on stderr, exit 8;
  - the reader goes away (| head -2): the watch ends at its next sample
    (no more stops for nobody), quietly, exit 0, the target running;
  - the pause budget: with a budget below what a census costs, the
    interval backs off (interval_s grows) and the share is reported;
  - text output (not a terminal): one line per sample and the summary;
  - --nonblocking: no pause, every sample marked approximate; on an idle
    target the counts of a watch that stops it; on the leak, the leak and
    its rate within 15% of the truth;
  - bad arguments: exit 2, one line.
"""

import json
import os
import re
import shutil
import signal
import socket
import sys
import threading
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402
import test_watch as W  # noqa: E402

NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( \d+)?$")


def strict_parse(text):
    """The text exposition format, strictly: {name: (type, [(labels,
    value)])}; raises ValueError on anything else."""
    fams, types = {}, {}
    for n, line in enumerate(text.split("\n")):
        if line == "" and n == len(text.split("\n")) - 1:
            continue
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            if len(parts) != 4 or not NAME.match(parts[2]) or parts[3] not in (
                    "gauge", "counter", "untyped", "summary", "histogram"):
                raise ValueError("line %d: bad TYPE: %r" % (n + 1, line))
            if parts[2] in types:
                raise ValueError("line %d: second TYPE for %s" % (n + 1, parts[2]))
            types[parts[2]] = parts[3]
            fams[parts[2]] = (parts[3], [])
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise ValueError("line %d: not a sample: %r" % (n + 1, line))
        name, body, value = m.group(1), m.group(3), m.group(4)
        labels = {}
        if body:
            rest = body
            while rest:
                lm = LABEL.match(rest)
                if not lm:
                    raise ValueError("line %d: bad labels %r" % (n + 1, body))
                v = lm.group(2).replace("\\n", "\n").replace('\\"', '"') \
                    .replace("\\\\", "\\")
                labels[lm.group(1)] = v
                rest = rest[lm.end():]
                if rest.startswith(","):
                    rest = rest[1:]
                elif rest:
                    raise ValueError("line %d: bad labels %r" % (n + 1, body))
        if name not in fams:
            raise ValueError("line %d: sample before its TYPE: %s" % (n + 1, name))
        fams[name][1].append((labels, float(value)))
    return fams


def parse_prom(text):
    """(families, which parser)."""
    fams = strict_parse(text)
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        return fams, "the strict parser in this test"
    out = {}
    for fam in text_string_to_metric_families(text):
        samples = [(dict(s.labels), s.value) for s in fam.samples]
        # The client names a counter family without its _total.
        name = fam.name + "_total" if fam.type == "counter" else fam.name
        out[name] = (fam.type, samples)
    if set(out) != set(fams):
        raise ValueError("the parsers disagree: %s vs %s" % (sorted(out),
                                                             sorted(fams)))
    return out, "prometheus_client %s and the strict parser" % (
        getattr(__import__("prometheus_client"), "__version__", ""))


class Listener(object):
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.datagrams = []
        self.done = False
        self.th = threading.Thread(target=self.run)
        self.th.daemon = True
        self.th.start()

    def run(self):
        while not self.done:
            try:
                data, _ = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            self.datagrams.append(data)

    def stop(self):
        self.done = True
        self.th.join(2)
        self.sock.close()


def start(py, pattern):
    fx = W.WatchFixture(py, pattern)
    fx.wait_ready()
    return fx


def check_exports(ck, args, py, d):
    prom = os.path.join(d, "watch.prom")
    svg = os.path.join(d, "watch.svg")
    ls = Listener()
    fx = start(py, "leak")
    try:
        w = W.Watch(args.pyxray, fx.pid, [
            "--interval", 0.15, "--count", 16, "--pause-budget", 0,
            "--holders", 0, "--top", 5, "--prometheus", prom,
            "--statsd", "127.0.0.1:%d" % ls.port,
            "--statsd-prefix", "test.watch", "--svg", svg])
        w.first_line()
        fx.touch("go")
        w.finish()
    finally:
        fx.stop()
        time.sleep(0.3)
        ls.stop()
    if not ck.ok(w.rc == 0 and w.summary, "exports: watch exit 0 with a "
                 "summary", "rc %s: %s" % (w.rc, w.err[:1000])):
        return
    sm = w.summary
    g = W.growing(sm, W.LEAKY)
    ck.ok(sm["pattern"] == "leak" and g and g["leak"],
          "exports: the fixture's leak seen (%s)" % sm["pattern"])
    # Prometheus
    left = [f for f in os.listdir(d) if f.endswith(".tmp")]
    ck.ok(not left, "prometheus: no temporary file left (%s)" % left)
    try:
        with open(prom) as f:
            text = f.read()
        fams, how = parse_prom(text)
    except (OSError, ValueError) as e:
        ck.fail("prometheus: the textfile parses", str(e))
        return
    T.log("  info prometheus parsed by %s: %d families" % (how, len(fams)))
    want = {"pyxray_rss_bytes": "gauge", "pyxray_python_heap_bytes": "gauge",
            "pyxray_python_objects": "gauge", "pyxray_pause_seconds": "gauge",
            "pyxray_samples_total": "counter", "pyxray_memory_pattern": "gauge",
            "pyxray_type_objects": "gauge", "pyxray_type_bytes": "gauge",
            "pyxray_type_growth_objects_per_second": "gauge",
            "pyxray_type_leak": "gauge"}
    bad = ["%s: %s" % (k, fams.get(k, ("missing",))[0]) for k, v in want.items()
           if fams.get(k, (None,))[0] != v]
    bad += [k for k in fams if not k.startswith("pyxray_") or
            not re.search(r"_(bytes|seconds|objects|total|pattern|leak|"
                          r"per_second|place)$", k)]
    bad += ["%s without pid" % k for k, (_, ss) in fams.items()
            for lb, _ in ss if lb.get("pid") != str(fx.pid)]
    ck.ok(not bad, "prometheus: the families, their types, units in the "
          "names, pid on every sample", "\n".join(bad[:20]))
    objs = dict((lb["type"], v) for lb, v in fams["pyxray_type_objects"][1])
    leak = dict((lb["type"], v) for lb, v in fams["pyxray_type_leak"][1])
    ck.ok(objs.get(W.LEAKY) == g["last"] and leak.get(W.LEAKY) == 1,
          "prometheus: %s = %s objects (summary %d), leak %s"
          % (W.LEAKY, objs.get(W.LEAKY), g["last"], leak.get(W.LEAKY)))
    ck.ok(len(objs) <= 2 * 5, "prometheus: %d type labels (bounded by 2 x "
          "--top 5)" % len(objs))
    pat = dict((lb["pattern"], v) for lb, v in fams["pyxray_memory_pattern"][1])
    ck.ok(pat.get("leak") == 1 and sum(pat.values()) == 1 and len(pat) == 7,
          "prometheus: the pattern one-hot (%s)" % pat)
    samples = fams["pyxray_samples_total"][1][0][1]
    ck.ok(samples == 16, "prometheus: pyxray_samples_total %s" % samples)
    last = w.samples[-1]
    mem = dict((lb.get("category"), v)
               for lb, v in fams.get("pyxray_memory_bytes", (0, []))[1])
    want_mem = dict((k, v) for k, v in last["memory"].items()
                    if v is not None)
    ck.ok(mem == want_mem and "malloc_in_use" in mem,
          "prometheus: pyxray_memory_bytes{category=...}: %d categories, "
          "the last sample's" % len(mem),
          "prometheus %s\njson %s" % (mem, want_mem))
    for fam in ("pyxray_memory_growth_bytes_per_second", "pyxray_memory_leak"):
        cats = set(lb.get("category") for lb, _ in fams.get(fam, (0, []))[1])
        ck.ok(cats == set(want_mem), "prometheus: %s for every category"
              % fam, "%s vs %s" % (sorted(cats), sorted(want_mem)))
    place = dict((lb["place"], v) for lb, v in
                 fams.get("pyxray_memory_growth_place", (0, []))[1])
    ck.ok(place.get(sm["memory"]["place"]) == 1 and sum(place.values()) == 1
          and sm["memory"]["place"] == "python",
          "prometheus: the place one-hot: %s (summary %s)"
          % ([k for k, v in place.items() if v], sm["memory"]["place"]))
    cp = fams.get("pyxray_census_pause_seconds", (0, [(0, -1)]))[1][0][1]
    pp = fams["pyxray_pause_seconds"][1][0][1]
    ck.ok(abs(cp - last["census_pause_ms"] / 1e3) < 1e-5 and
          abs(pp - last["pause_ms"] / 1e3) < 1e-5 and pp > cp,
          "prometheus: pause %.4f s (both stops) > the census's %.4f s"
          % (pp, cp))
    # statsd
    lines = [l for d_ in ls.datagrams for l in d_.decode("ascii").split("\n")]
    badl = [l for l in lines if not re.match(
        r"^test\.watch\.[A-Za-z0-9_.-]+:-?[0-9.]+(e[+-]?\d+)?\|g$", l)]
    ck.ok(lines and not badl and all(len(d_) <= 1400 for d_ in ls.datagrams),
          "statsd: %d datagrams, %d gauges, each 'test.watch.NAME:V|g'"
          % (len(ls.datagrams), len(lines)), "\n".join(badl[:10]))
    series = [float(l.split(":")[1].split("|")[0]) for l in lines
              if l.startswith("test.watch.types.__main___Leaky.objects:")]
    rss = [l for l in lines if l.startswith("test.watch.rss_bytes:")]
    ck.ok(len(series) == 16 and len(rss) == 16 and
          series[-1] == g["last"] and series[-1] > series[0],
          "statsd: the Leaky gauge in every sample, rising to %s (summary %d)"
          % (series[-1] if series else None, g["last"]))
    pre = "test.watch.memory.malloc_in_use.bytes:"
    got = [float(l[len(pre):].split("|")[0]) for l in lines
           if l.startswith(pre)]
    want = [float(x["memory"]["malloc_in_use"]) for x in w.samples]
    ck.ok(got == want, "statsd: %s in every sample, the JSON's" % pre[:-1],
          "%s vs %s" % (got[:5], want[:5]))
    ncat = len(set(l.split(":")[0] for l in lines
                   if l.startswith("test.watch.memory.")))
    ck.ok(ncat == len([v for v in w.samples[-1]["memory"].values()
                       if v is not None]),
          "statsd: %d memory categories" % ncat)
    # SVG
    try:
        root = ET.parse(svg).getroot()
    except (OSError, ET.ParseError) as e:
        ck.fail("svg: parses as XML", str(e))
        return
    ns = "{http://www.w3.org/2000/svg}"
    polys = root.findall(".//%spolyline" % ns)
    texts = "".join("".join(t.itertext()) + "\n"
                    for t in root.iter("%stext" % ns))
    ck.ok(root.tag == ns + "svg" and len(polys) >= 3 and
          "shape: leak" in texts and W.LEAKY in texts,
          "svg: an <svg> with %d curves, the shape and the leaking type"
          % len(polys), texts[:600])
    ck.ok("Memory by category" in texts and "Where it grows:" in texts and
          "glibc malloc in use" in texts,
          "svg: the memory panel and where it grows", texts[-800:])
    pts = [p.get("points").split() for p in polys]
    ck.ok(all(len(p) >= 2 for p in pts) and
          any(len(p) == 16 for p in pts), "svg: curves of 16 points")


def check_sigint(ck, args, py):
    fx = start(py, "flat")
    try:
        w = W.Watch(args.pyxray, fx.pid, ["--interval", 0.2, "--holders", 0,
                                          "--pause-budget", 0])
        w.first_line()
        time.sleep(1.0)
        w.proc.send_signal(signal.SIGINT)
        w.finish(timeout=30)
        ck.ok(w.rc == 0 and w.summary and w.summary["ended"] == "interrupted"
              and w.summary["samples"] >= 3,
              "SIGINT: the summary, ended 'interrupted', exit 0 (%s samples)"
              % (w.summary or {}).get("samples"),
              "rc %s: %s" % (w.rc, w.err[:800]))
        ck.ok(not T.wait_all_running(fx.pid) and T.tracer_pid(fx.pid) == 0,
              "SIGINT: the target runs, not traced")
    finally:
        fx.stop()


def check_exit(ck, args, py):
    fx = start(py, "leak")
    try:
        w = W.Watch(args.pyxray, fx.pid, ["--interval", 0.1, "--count", 200,
                                          "--holders", 2, "--pause-budget", 0])
        w.first_line()
        fx.touch("go")
        time.sleep(1.2)
        fx.touch("exit")
        w.finish(timeout=60)
        ck.ok(w.rc == T.EXIT["EXITED"] and w.summary and
              w.summary["ended"] == "exited" and 3 <= w.summary["samples"] < 200
              and "exited during the watch" in w.err,
              "target exits: the summary of %s samples, ended 'exited', exit "
              "8, said on stderr" % (w.summary or {}).get("samples"),
              "rc %s: %s" % (w.rc, w.err[:800]))
    finally:
        fx.stop()


def check_closed(ck, args, py):
    """The reader goes away (pyxray watch ... | head -2): the watch ends
    at its next sample instead of stopping the target for nobody, quietly,
    exit 0."""
    fx = start(py, "flat")
    try:
        t0 = time.monotonic()
        p = T.spawn([args.pyxray, "watch", str(fx.pid), "--interval", "0.25",
                     "--count", "40", "--holders", "0", "--pause-budget",
                     "0", "--no-live"], stdout=T.subprocess.PIPE,
                    stderr=T.subprocess.PIPE)
        got = [p.stdout.readline() for _ in range(2)]
        p.stdout.close()
        try:
            err = p.stderr.read().decode("utf-8", "replace")
            rc = p.wait(timeout=30)
        except T.subprocess.TimeoutExpired:
            p.kill()
            rc, err = None, "did not end"
        took = time.monotonic() - t0
        # 40 samples 0.25 s apart: 10 s if it went on
        ck.ok(all(got) and rc == 0 and took < 4.0 and "error" not in err,
              "output closed: the watch ends at its next sample, quietly, "
              "exit 0 (%.1f s, rc %s)" % (took, rc), err[:800])
        ck.ok(not T.wait_all_running(fx.pid) and T.tracer_pid(fx.pid) == 0,
              "output closed: the target runs, not traced")
    finally:
        fx.stop()


def check_budget(ck, args, py):
    fx = start(py, "flat")
    try:
        w = W.Watch(args.pyxray, fx.pid, ["--interval", 0.02, "--count", 5,
                                          "--pause-budget", 20,
                                          "--holders", 0])
        w.first_line()
        w.finish(timeout=60)
        iv = [s["interval_s"] for s in w.samples]
        ok = w.rc == 0 and w.summary and all(
            s["interval_s"] + 0.002 >= s["pause_ms"] / 1e3 / 0.2
            for s in w.samples) and max(iv) > 0.02
        ck.ok(ok, "pause budget 20%%: the interval backs off (%s s)"
              % ", ".join("%.2f" % i for i in iv), w.err[:500])
        t = [s["t"] for s in w.samples]
        # Times are the middles of the pauses: spaced by the interval
        # give or take a pause (a fifth of it at a 20% budget) and a walk.
        ck.ok(len(t) == 5 and all(t[i + 1] - t[i] >= 0.6 * iv[i]
                                  for i in range(4)),
              "pause budget: samples spaced by the backed-off interval")
    finally:
        fx.stop()


def check_nonblocking(ck, args, py):
    # Idle: the counts of a watch that never stops the target are those of
    # one that does.
    fx = start(py, "flat")
    try:
        runs = []
        for extra in ([], ["--nonblocking"]):
            w = W.Watch(args.pyxray, fx.pid, ["--interval", 0.1, "--count", 6,
                                              "--pause-budget", 0] + extra +
                        ([] if extra else ["--holders", 0]))
            w.first_line()
            runs.append(w.finish())
        a, b = runs
        ck.ok(b.rc == 0 and b.summary and b.summary["approximate"] and
              all(s["pause_ms"] == 0 and s["approximate"] and
                  s["memory"] is None for s in b.samples) and
              not b.summary["memory"]["followed"],
              "nonblocking: no pause, every sample marked approximate, no "
              "memory categories (they need a stop)", b.err[:500])
        ca = [s["gc_objects"] for s in a.samples]
        cb = [s["gc_objects"] for s in b.samples]
        ck.ok(a.rc == 0 and len(set(ca)) == 1 and cb == ca,
              "nonblocking, idle target: the stopped counts (%s vs %s)"
              % (cb[:3], ca[:3]))
    finally:
        fx.stop()
    # Allocating: the leak and its rate, against the truth.
    fx = start(py, "leak")
    try:
        w = W.Watch(args.pyxray, fx.pid, ["--interval", 0.15, "--count", 16,
                                          "--nonblocking"])
        w.first_line()
        fx.touch("go")
        w.finish()
        truth = fx.dump()
        g = W.growing(w.summary or {"growing": []}, W.LEAKY)
        t0, t1 = w.samples[0]["time"], w.samples[-1]["time"]
        rate, _ = W.truth_rate(truth, W.LEAKY, max(t0, truth["go"]), t1)
        ck.ok(w.rc == 0 and g and g["leak"] and rate and
              abs(g["count_per_s"] - rate) <= 0.15 * rate,
              "nonblocking, allocating target: %s a leak at %.0f/s, truth "
              "%.0f/s" % (W.LEAKY, g["count_per_s"] if g else 0, rate or 0),
              w.err[:500])
    finally:
        fx.stop()
    res = T.pyxray(args.pyxray, "watch", "1", "--nonblocking", "--full")
    ck.ok(res.rc == 2, "nonblocking with --full: exit 2")


def check_text(ck, args, py):
    fx = start(py, "flat")
    try:
        res = T.pyxray(args.pyxray, "watch", fx.pid, "--interval", 0.1,
                       "--count", 7, "--holders", 0, "--pause-budget", 0,
                       timeout=60)
        lines = res.out.splitlines()
        per = [l for l in lines if re.match(r"^\[\s*\d+\]\s+[0-9.]+ s ", l)]
        ck.ok(res.rc == 0 and len(per) == 7 and
              any(l.startswith("Python heap (GC-tracked objects): flat")
                  for l in lines) and "\033" not in res.out,
              "text: 7 sample lines, the summary, no terminal codes in a pipe",
              res.describe())
    finally:
        fx.stop()


def check_no_categories(ck, args, py):
    fx = start(py, "flat")
    try:
        w = W.Watch(args.pyxray, fx.pid, ["--interval", 0.1, "--count", 6,
                                          "--pause-budget", 0, "--holders", 0,
                                          "--no-categories"])
        w.first_line()
        w.finish()
        m = (w.summary or {}).get("memory", {})
        ck.ok(w.rc == 0 and all(s["memory"] is None and
                                s["pause_ms"] == s["census_pause_ms"]
                                for s in w.samples) and
              m.get("followed") is False and m.get("off") == "--no-categories"
              and m.get("place") == "unknown",
              "--no-categories: one stop a sample, no categories, said so "
              "(%s)" % m.get("off"), w.err[:500] + json.dumps(m)[:500])
    finally:
        fx.stop()


def check_place_fails(ck, args, py):
    """The placement fails in every sample (test hook): the watch goes
    on with the census's figures, says it once, and the target runs."""
    fx = start(py, "flat")
    os.environ["PYX_TEST_PLACE_FAIL"] = "1"
    try:
        w = W.Watch(args.pyxray, fx.pid, ["--interval", 0.1, "--count", 6,
                                          "--pause-budget", 0, "--holders", 0])
        w.first_line()
        w.finish()
    finally:
        del os.environ["PYX_TEST_PLACE_FAIL"]
    try:
        m = (w.summary or {}).get("memory", {})
        if m.get("placed"):
            T.log("SKIP PART: the placement's failure: pyxray was built "
                  "without PYX_TEST_HOOKS")
            return
        with open("/proc/%d/stat" % fx.pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        ck.ok(w.rc == 0 and len(w.samples) == 6 and
              all(s["memory"] is None and s["objects"] > 0
                  for s in w.samples) and
              "test hook" in str(m.get("error")) and
              w.err.count("could not be placed") == 1 and
              state not in ("t", "T"),
              "the placement failing: 6 samples with the census's figures, "
              "said once, the error in the summary, the target running "
              "(state %s)" % state, w.err[:500] + json.dumps(m)[:500])
    finally:
        fx.stop()


def check_core(ck, args, py):
    """A core: the allocators' figures from it, the mappings said once."""
    if not shutil.which("gcore"):
        T.log("  info core: NOT CHECKED: no gcore")
        return
    fx = start(py, "flat")
    d = T.tmpdir()
    try:
        res = T.run(["gcore", "-o", os.path.join(d, "core"), str(fx.pid)],
                    timeout=120)
        core = os.path.join(d, "core.%d" % fx.pid)
        if res.rc != 0 or not os.path.exists(core):
            T.log("  info core: NOT CHECKED: gcore failed: %s"
                  % res.describe()[:300])
            return
    finally:
        fx.stop()
    res = T.pyxray(args.pyxray, "watch", core, "--interval", 0.05, "--count",
                   3, "--holders", 0, "--json", timeout=120)
    try:
        docs = [json.loads(l) for l in res.out.splitlines() if l.strip()]
    except ValueError:
        docs = []
    samples = [x for x in docs if not x.get("summary")]
    maps = ("thread_stacks", "mapped_files", "shared_memory", "unexplained")
    notes = [l for l in res.err.splitlines() if "not followed" in l]
    ok = res.rc == 0 and len(samples) == 3 and all(
        x["memory"] and x["memory"]["malloc_in_use"] and
        x["memory"]["python_objects"] == x["bytes"] and
        all(x["memory"][k] is None for k in maps) for x in samples)
    ck.ok(ok and len(notes) == 1 and "not a live process" in notes[0],
          "core: the allocators read from the core, the mappings said once "
          "(%s)" % (notes[0] if notes else None), res.describe()[:1500])
    sm = docs[-1] if docs else {}
    cats = sm.get("memory", {}).get("categories", {})
    ck.ok(cats and not cats["thread_stacks"]["known"] and
          "not a live process" in (cats["thread_stacks"]["why"] or "") and
          cats["malloc_in_use"]["known"],
          "core: the summary says why the mappings are not followed",
          json.dumps(cats)[:800])


def check_bad(ck, args):
    for argv in (["watch", "1", "--count", "2", "--duration", "3"],
                 ["watch", "1", "--interval", "0"],
                 ["watch", "1", "--statsd", "nocolon"],
                 ["watch"]):
        res = T.pyxray(args.pyxray, *argv)
        ck.ok(res.rc == 2 and T.one_line_stderr(res) is None,
              "bad arguments %s: exit 2, one line" % " ".join(argv[1:]),
              res.describe())


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    py = T.find_dwarf_python()
    if not py:
        T.log("SKIP: no Python with DWARF for the export checks")
        return T.SKIP
    version = T.check_target_python(py)
    ck = T.Checker("watch exports (%s)" % version)
    d = T.tmpdir()
    try:
        check_bad(ck, args)
        check_exports(ck, args, py, d)
        check_sigint(ck, args, py)
        check_exit(ck, args, py)
        check_closed(ck, args, py)
        check_budget(ck, args, py)
        check_text(ck, args, py)
        check_nonblocking(ck, args, py)
        check_no_categories(ck, args, py)
        check_place_fails(ck, args, py)
        check_core(ck, args, py)
    except RuntimeError as e:
        ck.fail("run: %s" % e)
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
