"""Hostile targets (from the safety review): pyxray must stay bounded and
honest.  A stack deeper than --max-depth is cut with a notice, never
silently; a co_filename naming a FIFO is not opened (no hang); escape
sequences in names never reach the terminal raw; an interpreter whose file
was deleted since it started (a package upgrade) is still read.

  test_hostile_once.py --pyxray BIN --python PY     exit 0, 1 or 77
"""

import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402

TARGET = os.path.join(T.FIXTURES, "hostile_target.py")


def start(chk, argv, ready):
    p = T.spawn(argv)
    deadline = time.monotonic() + 30
    while not os.path.exists(ready) and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.05)
    chk.ok(os.path.exists(ready), "the target is ready: %s" % " ".join(argv))
    return p


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    py = T.find_dwarf_python(preferred=("3.12", "3.11", "3.13", "3.10", "3.9", "3.8"))
    if py is None:
        T.log("SKIP: no CPython 3.8-3.13 with DWARF on this machine")
        return T.SKIP
    chk = T.Checker("hostile targets")
    d = T.tmpdir()
    fifo = os.path.join(d, "fifo.py")
    os.mkfifo(fifo)
    ready = os.path.join(d, "ready")
    p = start(chk, [py, TARGET, ready, fifo], ready)
    try:
        text = T.pyxray(args.pyxray, "stacks", p.pid, "--context", "1", timeout=20)
        chk.ok(text.rc == 0, "text output with --context completes (a FIFO as "
               "co_filename is not opened)", text.describe())
        chk.ok("\x1b" not in text.out and "\x07" not in text.out,
               "no raw escape or bell byte reaches the terminal")
        chk.ok("\\x1b[31mEVIL" in text.out, "the evil name is shown escaped")
        res = T.pyxray(args.pyxray, "stacks", p.pid, "--json", timeout=20)
        if chk.ok(res.rc == 0, "JSON output", res.describe()):
            doc = res.json()
            deep = [t for t in doc["threads"] if len(t["frames"]) >= 4096]
            chk.ok(len(deep) == 1 and len(deep[0]["frames"]) == 4096 and
                   deep[0]["error"] and "cut at 4096" in deep[0]["error"],
                   "the 5000-deep stack is cut at 4096 frames and says so (%r)" %
                   (deep[0]["error"] if deep else None))
            evil = [f for t in doc["threads"] for f in t["frames"]
                    if f["name"].startswith("\x1b[31mEVIL")]
            chk.ok(len(evil) == 1, "JSON keeps the exact name (escaped by JSON)")
        res = T.pyxray(args.pyxray, "stacks", p.pid, "--json", "--max-depth", "10000")
        if chk.ok(res.rc == 0, "--max-depth 10000", res.describe()):
            deep = [t for t in res.json()["threads"] if len(t["frames"]) > 5000]
            chk.ok(len(deep) == 1 and not deep[0]["error"],
                   "with --max-depth 10000 the whole stack is shown, no notice")
        chk.ok(not T.wait_all_running(p.pid, 1.0), "no thread of the target left stopped")
    finally:
        T.kill_child(p)

    # A deleted interpreter: a copy of a static python, removed once running.
    static = "/usr/bin/python3"
    if os.path.exists(static) and "libpython" not in T.interpreter_binary(static):
        copy = os.path.join(d, "python3-upgraded-away")
        shutil.copy2(os.path.realpath(static), copy)
        ready2 = os.path.join(d, "ready2")
        p = start(chk, [copy, TARGET, ready2, os.path.join(d, "nofifo")], ready2)
        try:
            os.unlink(copy)
            res = T.pyxray(args.pyxray, "stacks", p.pid, "--json", timeout=20)
            chk.ok(res.rc == 0 and res.json()["python_binary"].endswith("(deleted)"),
                   "an interpreter deleted from disk is still read", res.describe())
        finally:
            T.kill_child(p)
    else:
        T.log("note: no static /usr/bin/python3: deleted-interpreter case not run")
    return chk.finish()


if __name__ == "__main__":
    sys.exit(main())
