"""pyxray's output against a target whose strings are made to break it
(fixtures/output_target.py), and against a reader that goes away:

  - text output of stacks (with --context and --native), census, refs and
    info holds no raw C0 control but newline, no DEL, no C1 control (C2 80 to
    C2 9F) and no byte that is not UTF-8: each is shown escaped;
  - --json of each is valid UTF-8 (strict decode) and parses with Python's
    json, with the target's exact strings (a lone surrogate as \\udXXX);
  - stdout a pipe whose reader is gone (`pyxray ... | head -c 1`): no error
    line, exit 0, for every command and --help; stdout on a full disk
    (/dev/full) still is an error (exit 13, one line).

  test_output_once.py --pyxray BIN --python PY     exit 0, 1 or 77
"""

import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402

TARGET = os.path.join(T.FIXTURES, "output_target.py")
C1 = re.compile(b"\xc2[\x80-\x9f]")
C0 = re.compile(b"[\x00-\x09\x0b-\x1f\x7f]")  # all but newline
# Bidi and line controls (U+200E-200F, U+2028-202E, U+2066-2069, U+FEFF)
BIDI = re.compile("[\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def run_bytes(argv, timeout=60):
    """(rc, stdout bytes, stderr text); rc None on timeout."""
    p = T.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        T.kill_child(p)
        return None, b"", "(timed out)"
    T.kill_child(p)
    return rc, out, err.decode("utf-8", "replace")


def run_closed_pipe(argv, timeout=60):
    """Run argv with stdout a pipe whose read end is closed before pyxray
    writes anything (the first write fails with EPIPE): (rc, stderr)."""
    r, w = os.pipe()
    os.close(r)
    try:
        p = T.spawn(argv, stdout=w, stderr=subprocess.PIPE)
    finally:
        os.close(w)
    try:
        _, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        T.kill_child(p)
        return None, "(timed out)"
    T.kill_child(p)
    return rc, err.decode("utf-8", "replace")


def run_head(argv, timeout=60):
    """argv | head -c 1: read one byte, close, wait: (rc, stderr)."""
    p = T.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        p.stdout.read(1)
        p.stdout.close()
        err = p.stderr.read()
        p.wait(timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        T.kill_child(p)
        return None, "(timed out)"
    T.kill_child(p)
    return rc, err.decode("utf-8", "replace")


def check_text(chk, what, out):
    """No raw control or invalid UTF-8 in out (bytes)."""
    bad = []
    m = C0.search(out)
    if m:
        bad.append("raw C0/DEL byte %r at %d: %r" % (
            m.group(0), m.start(), out[max(0, m.start() - 40):m.start() + 20]))
    m = C1.search(out)
    if m:
        bad.append("raw C1 control %r at %d: %r" % (
            m.group(0), m.start(), out[max(0, m.start() - 40):m.start() + 20]))
    try:
        out.decode("utf-8", "strict")
    except UnicodeDecodeError as e:
        bad.append("invalid UTF-8: %s: %r" % (
            e, out[max(0, e.start - 40):e.start + 20]))
    m = BIDI.search(out.decode("utf-8", "replace"))
    if m:
        bad.append("raw bidi/line control U+%04X at %d" % (ord(m.group(0)),
                                                           m.start()))
    chk.ok(not bad, "%s: text output holds no raw control and is valid "
           "UTF-8" % what, "      " + "\n      ".join(bad))


def check_json(chk, what, out):
    """out (bytes) decodes as strict UTF-8 and parses; the document or
    None."""
    try:
        doc = json.loads(out.decode("utf-8", "strict"))
    except (UnicodeDecodeError, ValueError) as e:
        chk.fail("%s: --json is valid UTF-8 and parses" % what,
                 "      %s" % e)
        return None
    chk.ok(True, "%s: --json is valid UTF-8 and parses" % what)
    return doc


def escaped(s):
    """s as pyxray's text output shows it."""
    o = []
    for ch in s:
        c = ord(ch)
        if c < 0x20 or 0x7f <= c <= 0x9f:
            o.append("\\x%02x" % c)
        elif 0xd800 <= c <= 0xdfff or c in (0x200e, 0x200f, 0xfeff) or \
                0x2028 <= c <= 0x202e or 0x2066 <= c <= 0x2069:
            o.append("\\u%04x" % c)
        else:
            o.append(ch)
    return "".join(o)


def start_target(chk, py):
    d = T.tmpdir()
    truth_path = os.path.join(d, "truth.json")
    p = T.spawn([py, TARGET, truth_path])
    deadline = time.monotonic() + 30
    while not os.path.exists(truth_path) and p.poll() is None and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    if not chk.ok(os.path.exists(truth_path), "the target is ready"):
        T.kill_child(p)
        return None, None, d
    with open(truth_path) as f:
        return p, json.load(f), d


def case_text_and_json(chk, args, pid, truth):
    qual = truth["class_qualname"]
    runs = {}
    # stacks
    rc, out, err = run_bytes([args.pyxray, "stacks", str(pid), "--context",
                              "2"])
    if chk.ok(rc == 0, "stacks --context 2: exit 0", "      rc %s: %s" % (
            rc, err)):
        check_text(chk, "stacks --context 2", out)
        text = out.decode("utf-8", "replace")
        for name in truth["thread_names"][:2] + truth["thread_names"][4:]:
            chk.ok('"%s"' % escaped(name) in text,
                   "stacks: thread name %r shown escaped" % name)
        chk.ok(escaped(truth["function"]) in text,
               "stacks: function name shown escaped")
        chk.ok(escaped(truth["file"]) in text,
               "stacks: file name shown escaped")
        chk.ok("\\x1b]0;x\\x07 \\x9b1m \\ud800" in text and
               "\\x1b[2J \\x9b31m \\x7f \\xff" in text,
               "stacks --context: source lines shown escaped")
    rc, out, err = run_bytes([args.pyxray, "stacks", str(pid), "--native"])
    if rc == 0:
        check_text(chk, "stacks --native", out)
        runs["native"] = True
    else:
        T.log("  (stacks --native exits %s here: %s; not checked)" % (
            rc, err.strip()[:200]))
    rc, out, err = run_bytes([args.pyxray, "stacks", str(pid), "--json"])
    if chk.ok(rc == 0, "stacks --json: exit 0", "      rc %s: %s" % (rc, err)):
        doc = check_json(chk, "stacks", out)
        if doc is not None:
            names = [t["name"] for t in doc["threads"]]
            for name in truth["thread_names"]:
                chk.ok(name in names, "stacks --json: thread name %r exact"
                       % name, "      names: %r" % names)
            frames = [f for t in doc["threads"] for f in t["frames"]]
            chk.ok(any(f["function"] == truth["function"] and
                       f["file"] == truth["file"] for f in frames),
                   "stacks --json: function and file names exact "
                   "(surrogateescape'd byte as \\udcff)")
    # census
    rc, out, err = run_bytes([args.pyxray, "census", str(pid), "--top", "0"])
    if chk.ok(rc == 0, "census: exit 0", "      rc %s: %s" % (rc, err)):
        check_text(chk, "census", out)
        chk.ok(escaped(qual) in out.decode("utf-8", "replace"),
               "census: the class name shown escaped")
    rc, out, err = run_bytes([args.pyxray, "census", str(pid), "--json"])
    if chk.ok(rc == 0, "census --json: exit 0", "      rc %s: %s" % (rc, err)):
        doc = check_json(chk, "census", out)
        if doc is not None:
            chk.ok(any(t["type"] == qual for t in doc["types"]),
                   "census --json: the class name exact")
    # refs
    rc, out, err = run_bytes([args.pyxray, "refs", str(pid), "--type", qual])
    if chk.ok(rc == 0, "refs --type: exit 0", "      rc %s: %s" % (rc, err)):
        check_text(chk, "refs", out)
        text = out.decode("utf-8", "replace")
        chk.ok(escaped(truth["dict_key"]) in text and escaped(qual) in text,
               "refs: the dict key and the class name shown escaped")
    rc, out, err = run_bytes([args.pyxray, "refs", str(pid), "--type", qual,
                              "--json"])
    if chk.ok(rc == 0, "refs --json: exit 0", "      rc %s: %s" % (rc, err)):
        doc = check_json(chk, "refs", out)
        if doc is not None:
            edges = [s["edge"] for g in doc["groups"] for s in g["path"]]
            chk.ok(any(truth["dict_key"] in e for e in edges),
                   "refs --json: the dict key exact", "      %r" % edges)
    # info
    for extra in ([], ["--json"]):
        rc, out, err = run_bytes([args.pyxray, "info", str(pid)] + extra)
        if chk.ok(rc == 0, "info %s: exit 0" % " ".join(extra),
                  "      rc %s: %s" % (rc, err)):
            if extra:
                check_json(chk, "info", out)
            else:
                check_text(chk, "info", out)
    # An unknown type name that holds controls: the error line on stderr.
    rc, out, err = run_bytes([args.pyxray, "refs", str(pid), "--type",
                              "No\x1b[2JSuch\u009bType"])
    chk.ok(rc == 2 and "\x1b" not in err and "\u009b" not in err,
           "refs: an unknown type name is escaped in the error line",
           "      rc %s: %r" % (rc, err))
    return runs


def case_closed_pipe(chk, args, pid, qual, d, native):
    saves = [os.path.join(d, "a.pxh"), os.path.join(d, "b.pxh")]
    for s in saves:
        rc, _, err = run_bytes([args.pyxray, "census", str(pid), "--save", s])
        chk.ok(rc == 0, "census --save %s" % s, "      rc %s: %s" % (rc, err))
    cmds = [["stacks", str(pid)], ["stacks", str(pid), "--json"],
            ["census", str(pid)], ["census", str(pid), "--json"],
            ["refs", str(pid), "--type", qual], ["info", str(pid)],
            ["info", str(pid), "--json"], ["diff"] + saves,
            ["--help"], ["help", "stacks"], ["stacks", "--help"],
            ["census", "--help"], ["refs", "--help"], ["info", "--help"],
            ["diff", "--help"], ["layout", "--help"], ["--version"]]
    if native:
        cmds.insert(1, ["stacks", str(pid), "--native"])
    dwarf = T.has_dwarf(T.interpreter_binary(args.target_py))
    if dwarf[0]:
        cmds.append(["layout", "--from-dwarf", dwarf[1]])
    for argv in cmds:
        what = "pyxray %s" % escaped(" ".join(argv))
        rc, err = run_closed_pipe([args.pyxray] + argv)
        chk.ok(rc == 0 and err == "", "%s > closed pipe: exit 0, nothing on "
               "stderr" % what, "      rc %s, stderr %r" % (rc, err[:300]))
    for argv in (["stacks", str(pid)], ["census", str(pid), "--top", "0"],
                 ["--help"]):
        what = "pyxray %s" % escaped(" ".join(argv))
        rc, err = run_head([args.pyxray] + argv)
        chk.ok(rc == 0 and err == "", "%s | head -c 1: exit 0, nothing on "
               "stderr" % what, "      rc %s, stderr %r" % (rc, err[:300]))
    chk.ok(not T.wait_all_running(pid, 1.0),
           "closed pipes: no thread of the target left stopped")
    # Only a reader gone is quiet: a full disk is an error.
    if os.path.exists("/dev/full"):
        for argv in (["stacks", str(pid)], ["--help"]):
            with open("/dev/full", "w") as full:
                p = T.spawn([args.pyxray] + argv, stdout=full,
                            stderr=subprocess.PIPE)
                _, err = p.communicate(timeout=60)
                T.kill_child(p)
            err = err.decode("utf-8", "replace")
            chk.ok(p.returncode == 13 and len(err.splitlines()) == 1 and
                   "space" in err, "pyxray %s > /dev/full: exit 13, one "
                   "line" % " ".join(argv),
                   "      rc %s, stderr %r" % (p.returncode, err))


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    py = T.find_dwarf_python()
    if py is None:
        T.log("SKIP: no CPython 3.8-3.13 with DWARF on this machine")
        return T.SKIP
    args.target_py = py
    T.log("target python: %s" % py)
    chk = T.Checker("output")
    p, truth, d = start_target(chk, py)
    if p is None:
        return chk.finish()
    try:
        T.log("case: target strings in text and JSON output")
        runs = case_text_and_json(chk, args, p.pid, truth)
        T.log("case: a reader that goes away")
        case_closed_pipe(chk, args, p.pid, truth["class_qualname"], d,
                         runs.get("native", False))
        chk.ok(p.poll() is None and not T.wait_all_running(p.pid, 1.0),
               "the target is alive and running")
    finally:
        T.kill_child(p)
    return chk.finish()


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        T.cleanup()
