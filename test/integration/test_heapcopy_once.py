"""The heap copy holds the target's populated pages, not its address space.

  test_heapcopy_once.py --pyxray BIN --python PY    exit 0 pass, 1 fail, 77 skip

A target with 8 idle threads has 8 thread stacks of 8 MiB each, almost all
never touched: `pyxray census --json` must copy no more than the target's
RSS (the populated private writable pages are part of it), far less than
the size of the writable mappings, and still count the heap.  With
--max-copy cutting the copy short, census and refs give a partial result
(exit 0, truncated and partial), not exit 9.  PY: a Python
with DWARF is preferred (pyxtest.find_dwarf_python), else PY.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402


def writable_bytes(pid):
    """Bytes of the private writable mappings a heap copy considers."""
    total = 0
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            perms = fields[1]
            path = fields[5] if len(fields) > 5 else ""
            if perms[0] != "r" or perms[1] != "w" or perms[3] != "p":
                continue
            if path.startswith("[") and not (
                    path == "[heap]" or path.startswith("[anon")):
                continue
            if path.startswith("/dev/"):
                continue
            total += end - start
    return total


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    py = T.find_dwarf_python() or args.python
    version = T.check_target_python(py)
    chk = T.Checker("heap copy (%s, %s)" % (py, version))
    fx = T.Fixture(py, threads=8)
    try:
        res = T.pyxray(args.pyxray, "census", str(fx.pid), "--json")
        if not chk.ok(res.rc == 0, "census exits 0", "      " +
                      res.describe()):
            return chk.finish()
        doc = res.json()
        copied, rss = doc["copied_bytes"], doc["rss_bytes"]
        mapped = writable_bytes(fx.pid)
        T.log("copied %.1f MiB; target RSS %.1f MiB; writable mappings "
              "%.1f MiB" % (copied / 1048576.0, rss / 1048576.0,
                            mapped / 1048576.0))
        chk.ok(0 < copied <= rss, "the copy is no larger than the RSS",
               "      copied %d, RSS %d" % (copied, rss))
        chk.ok(copied < mapped / 2, "the copy is far less than the "
               "writable mappings (untouched stack pages are not copied)",
               "      copied %d of %d" % (copied, mapped))
        chk.ok(not doc.get("truncated"), "the copy is not truncated")
        chk.ok(doc.get("gc_objects", 0) > 1000, "the census counts the "
               "heap", "      gc_objects %r" % doc.get("gc_objects"))
        # A copy cut by --max-copy leaves mappings out: reads of them are
        # refused ("was not copied"), which is a partial result, not a
        # target that changed under pyxray (was: exit 9, "inconsistent
        # remote memory ... the target may have changed").
        for mib in ("1", "4"):
            res = T.pyxray(args.pyxray, "census", str(fx.pid), "--json",
                           "--max-copy", mib)
            if not chk.ok(res.rc == 0, "census --max-copy %s: exit 0" % mib,
                          "      " + res.describe()):
                continue
            doc = res.json()
            chk.ok(doc.get("truncated") is True and
                   doc.get("partial") is True,
                   "census --max-copy %s: truncated and partial" % mib,
                   "      truncated %r partial %r" % (
                       doc.get("truncated"), doc.get("partial")))
            res = T.pyxray(args.pyxray, "refs", str(fx.pid), "--type",
                           "dict", "--max-copy", mib)
            # 0 (a partial answer) or 2 (nothing of the type in the part
            # copied), never 9
            chk.ok(res.rc in (0, 2) and "may have changed" not in res.err,
                   "refs --max-copy %s: a partial answer, not exit 9" % mib,
                   "      " + res.describe())
    finally:
        fx.stop()
    return chk.finish()


if __name__ == "__main__":
    sys.exit(main())
