"""pyxray stacks against a live stacks_target.py, compared with the truth the
target computed about itself.

  test_stacks.py --pyxray BIN --python PY      exit 0 pass, 1 fail, 77 skip
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402

TOP_KEYS = ("pid", "python_version", "pause_ms", "threads")
THREAD_KEYS = ("thread_id", "native_thread_id", "name", "holds_gil",
               "interpreter_id", "frames")
FRAME_KEYS = ("function", "name", "file", "line")


def fmt_frame(f):
    if f is None:
        return "-"
    if not isinstance(f, dict):
        return repr(f)
    return "%s [%s] %s:%s" % (f.get("function"), f.get("name"),
                              f.get("file"), f.get("line"))


def frame_diff(truth, got, spinner_lines=None):
    """[] when the frame lists agree, else lines of a side-by-side diff.
    spinner_lines: the innermost line may be any of these."""
    bad = len(truth) != len(got)
    rows = []
    for i in range(max(len(truth), len(got))):
        t = truth[i] if i < len(truth) else None
        g = got[i] if i < len(got) else None
        ok = t is not None and isinstance(g, dict)
        if ok:
            for k in ("function", "name", "file"):
                ok = ok and g.get(k) == t[k]
            if i == 0 and spinner_lines is not None:
                ok = ok and g.get("line") in spinner_lines
            else:
                ok = ok and g.get("line") == t["line"]
        bad = bad or not ok
        rows.append("      %s #%d truth: %s\n         got:   %s"
                    % ("  " if ok else "!!", i, fmt_frame(t), fmt_frame(g)))
    if not bad:
        return []
    if spinner_lines is not None:
        rows.append("      (spinner: innermost line may be any of %s)"
                    % spinner_lines)
    return rows


def check_schema(chk, doc):
    problems = []
    for k in TOP_KEYS:
        if k not in doc:
            problems.append("top-level key %r missing" % k)
    for i, t in enumerate(doc.get("threads") or []):
        for k in THREAD_KEYS:
            if k not in t:
                problems.append("threads[%d]: key %r missing" % (i, k))
        for j, f in enumerate(t.get("frames") or []):
            for k in FRAME_KEYS:
                if k not in f:
                    problems.append("threads[%d].frames[%d]: key %r missing"
                                    % (i, j, k))
            if not isinstance(f.get("line"), int):
                problems.append("threads[%d].frames[%d]: line %r is not an "
                                "integer" % (i, j, f.get("line")))
        if not isinstance(t.get("holds_gil"), bool):
            problems.append("threads[%d]: holds_gil %r is not a boolean"
                            % (i, t.get("holds_gil")))
    chk.ok(not problems, "JSON has the contract's keys and types",
           "\n".join("      " + p for p in problems[:30]))


def index_threads(chk, doc):
    by_id = {}
    dups = []
    for t in doc.get("threads") or []:
        tid = t.get("thread_id")
        if tid in by_id:
            dups.append(tid)
        by_id[tid] = t
    chk.ok(not dups, "no duplicate thread_id", "      duplicates: %s" % dups)
    return by_id


def holders(doc):
    return [t for t in doc.get("threads") or [] if t.get("holds_gil") is True]


def check_native_tid(chk, fx, label, tt, got):
    """The truth's native_thread_id is the target's own view: in a PID
    namespace (container mode) that is pyxray's ns_native_thread_id, and
    native_thread_id is the host's TID of one of the target's threads."""
    if not fx.spec.in_pid_namespace():
        chk.ok(got.get("native_thread_id") == tt["native_thread_id"],
               "%s native_thread_id %d" % (label, tt["native_thread_id"]),
               "      got %r" % got.get("native_thread_id"))
        return
    chk.ok(got.get("ns_native_thread_id") == tt["native_thread_id"],
           "%s ns_native_thread_id %d (its namespace's TID)"
           % (label, tt["native_thread_id"]),
           "      got %r" % got.get("ns_native_thread_id"))
    host = got.get("native_thread_id")
    chk.ok(isinstance(host, int) and
           os.path.exists("/proc/%d/task/%d" % (fx.pid, host)),
           "%s native_thread_id %r is a host TID of the target" % (label, host))


def check_full(chk, fx, doc):
    truth = fx.truth
    check_schema(chk, doc)
    chk.ok(doc.get("pid") == fx.pid, "pid is %d" % fx.pid,
           "      got %r" % doc.get("pid"))
    chk.ok(doc.get("python_version") == truth["python_version"],
           "python_version is %s" % truth["python_version"],
           "      got %r" % doc.get("python_version"))
    pm = doc.get("pause_ms")
    chk.ok(isinstance(pm, (int, float)) and not isinstance(pm, bool)
           and pm > 0, "pause_ms present and > 0", "      got %r" % (pm,))

    by_id = index_threads(chk, doc)
    truth_ids = set(t["thread_id"] for t in truth["threads"])
    extra = [(t.get("thread_id"), t.get("name"))
             for t in doc.get("threads") or []
             if t.get("thread_id") not in truth_ids]
    chk.ok(not extra, "no threads beyond the %d the target has"
           % len(truth_ids), "      extra: %s" % extra)

    for tt in truth["threads"]:
        label = "thread %s (%s, ident %d)" % (tt["name"], tt["role"],
                                              tt["thread_id"])
        got = by_id.get(tt["thread_id"])
        if not chk.ok(got is not None, "%s present" % label,
                      "      reported thread_ids: %s" % sorted(
                          str(k) for k in by_id)):
            continue
        check_native_tid(chk, fx, label, tt, got)
        chk.ok(got.get("name") == tt["name"],
               "%s name %r" % (label, tt["name"]),
               "      got %r" % got.get("name"))
        chk.ok(got.get("interpreter_id") == 0,
               "%s interpreter_id 0 (main interpreter)" % label,
               "      got %r" % got.get("interpreter_id"))
        spin = truth["spinner_lines"] if tt["role"] == "spinner" else None
        diff = frame_diff(tt["frames"], got.get("frames") or [], spin)
        chk.ok(not diff, "%s frames (%d) match" % (label, len(tt["frames"])),
               "\n".join(diff))


def check_gil(chk, fx, doc, attempt):
    """True when decided (holder found or failure), False to retry."""
    spinner = fx.thread(role="spinner")
    hs = holders(doc)
    names = [(h.get("name"), h.get("thread_id")) for h in hs]
    if len(hs) > 1:
        chk.fail("at most one thread holds the GIL (run %d)" % attempt,
                 "      holders: %s" % names)
        return True
    if len(hs) == 1:
        chk.ok(hs[0].get("thread_id") == spinner["thread_id"],
               "the GIL holder is the spinner (run %d)" % attempt,
               "      holder: %s" % names)
        return True
    T.log("  note: no thread holds the GIL in run %d" % attempt)
    return False


def source_line(path, line):
    with open(path) as f:
        lines = f.read().splitlines()
    return lines[line - 1] if 0 < line <= len(lines) else ""


def code_part(text):
    """A source line without its trailing comment and indentation."""
    return text.split("#", 1)[0].strip()


def check_text(chk, fx, res, mode, require_source):
    if not chk.ok(res.rc == 0, "%s exits 0" % mode, "      " + res.describe()):
        return
    chk.ok(res.out.strip() != "", "%s prints something" % mode)
    for tt in fx.truth["threads"]:
        if tt["role"] != "worker":
            continue
        label = "%s: %s" % (mode, tt["name"])
        inner = tt["frames"][0]["name"]
        own = [f for f in tt["frames"] if f["file"] == fx.truth["fixture_file"]][0]
        for fn in sorted(set([inner, own["name"]])):
            chk.ok(fn in res.out, "%s: function %r shown" % (label, fn))
        src = code_part(source_line(fx.spec.outside(tt["block_file"]),
                                    tt["block_line"]))
        if require_source:
            chk.ok(src in res.out, "%s: blocking line %r shown" % (label, src))
        else:
            T.log("  info %s: blocking line %r %s" % (
                label, src, "shown" if src in res.out else "NOT shown"))
        if tt["name"] not in res.out:
            T.log("  info %s: thread name not in the text output" % label)


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    version = T.check_target_python(args.python)
    chk = T.Checker("stacks %s (%s)" % (args.python, version))
    fx = T.Fixture(args.python, threads=4)
    try:
        T.log("target pid %d, %d threads, python %s" % (
            fx.pid, len(fx.truth["threads"]), version))

        # 1. --json, compared with the truth; retried (up to 3 runs in all)
        # only while no thread holds the GIL.
        for attempt in (1, 2, 3):
            res = T.pyxray(args.pyxray, "stacks", fx.pid, "--json")
            if not chk.ok(res.rc == 0, "stacks --json exits 0 (run %d)"
                          % attempt, "      " + res.describe()):
                break
            try:
                doc = res.json()
            except ValueError as e:
                chk.fail("stacks --json prints one JSON object (run %d)"
                         % attempt, "      %s\n%s" % (e, res.describe()))
                break
            if args.verbose:
                T.log(json.dumps(doc, indent=1))
            if attempt == 1:
                T.log("  (wall %.1f ms, pause_ms %s)" % (
                    res.wall * 1000, doc.get("pause_ms")))
                check_full(chk, fx, doc)
            if check_gil(chk, fx, doc, attempt):
                break
            if attempt == 3:
                chk.fail("some thread (the spinner) holds the GIL in one of "
                         "3 runs")

        # 2. text mode and --context 2
        res = T.pyxray(args.pyxray, "stacks", fx.pid)
        if args.verbose:
            T.log(res.out)
        check_text(chk, fx, res, "text", require_source=True)
        res = T.pyxray(args.pyxray, "stacks", fx.pid, "--context", "2")
        if args.verbose:
            T.log(res.out)
        check_text(chk, fx, res, "--context 2", require_source=True)

        # 3. --nonblocking: the blocked threads do not move, so their frames
        # must still match exactly.  Exit 9 (inconsistent memory) is a
        # legitimate outcome of reading a running process: retry it.
        for attempt in (1, 2, 3):
            res = T.pyxray(args.pyxray, "stacks", fx.pid, "--nonblocking",
                           "--json")
            if res.rc != T.EXIT["BAD_MEMORY"] or attempt == 3:
                break
            T.log("  note: --nonblocking exit 9 (inconsistent memory), retry")
        if chk.ok(res.rc == 0, "stacks --nonblocking --json exits 0",
                  "      " + res.describe()):
            try:
                doc = res.json()
            except ValueError as e:
                doc = None
                chk.fail("--nonblocking prints one JSON object",
                         "      %s\n%s" % (e, res.describe()))
            if doc is not None:
                by_id = index_threads(chk, doc)
                for tt in fx.truth["threads"]:
                    label = "--nonblocking: %s" % tt["name"]
                    got = by_id.get(tt["thread_id"])
                    if not chk.ok(got is not None, "%s present" % label):
                        continue
                    if tt["role"] == "spinner":
                        continue
                    diff = frame_diff(tt["frames"], got.get("frames") or [])
                    chk.ok(not diff, "%s frames match" % label,
                           "\n".join(diff))

        # 4. the target is left running
        left = T.wait_all_running(fx.pid, 1.0)
        chk.ok(not left, "no thread of the target left in t/T",
               "      stopped tids: %s" % left)
        if chk.ok(fx.alive(), "the target is still alive"):
            chk.ok(T.tracer_pid(fx.pid) == 0,
                   "the target is not traced any more")
    finally:
        fx.stop()
    return chk.finish()


if __name__ == "__main__":
    sys.exit(main())
