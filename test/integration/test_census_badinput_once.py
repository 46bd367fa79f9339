#!/usr/bin/env python3
"""pyxray census and diff on bad input (version-independent: run once).

  - snapshot files: missing, empty, not a snapshot, cut short, one byte
    flipped, another format version, totals that do not add up, a partial
    mark that contradicts the damage counts: exit 16
    (bad file format), one line on stderr;
  - a version 1 snapshot (before the damage lines) is still read;
  - a snapshot from another Python version: exit 6;
  - a tracked-only census against a full one: exit 2;
  - the target killed while pyxray holds it stopped for the census: exit 8
    (exited), one line, nothing left behind;
  - usage errors: exit 2.
"""

import os
import signal
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402
from test_census import CensusFixture  # noqa: E402

FORMAT, USAGE, UNSUPPORTED, EXITED, NO_PROCESS = 16, 2, 6, 8, 3


def with_crc(body):
    """A snapshot text with its 'end' line recomputed."""
    return body + "end\t%08x\n" % (zlib.crc32(body.encode()) & 0xffffffff)


def body_of(text):
    return text[:text.rindex("end\t")]


def expect(ck, res, code, what, needle=None):
    ok = res.rc == code and T.one_line_stderr(res) is None and \
        (needle is None or needle in res.err)
    ck.ok(ok, "%s: exit %d, one line%s" % (what, code,
          " naming '%s'" % needle if needle else ""), res.describe())


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    py = T.find_dwarf_python()
    if not py:
        log = "no supported Python with DWARF on this machine"
        T.log("SKIP: " + log)
        return T.SKIP
    ck = T.Checker("census bad input (target %s)" % py)
    d = T.tmpdir()
    fx = CensusFixture(py)
    try:
        good = os.path.join(d, "good.pxh")
        res = T.pyxray(args.pyxray, "census", fx.pid, "--save", good,
                       timeout=120)
        if not ck.ok(res.rc == 0, "a good snapshot", res.describe()):
            return ck.finish()
        with open(good) as f:
            text = f.read()
        res = T.pyxray(args.pyxray, "diff", good, good, "--json")
        ck.ok(res.rc == 0 and res.json()["growth"] == [],
              "a snapshot against itself: no growth", res.describe())

        def case(name, content, code, what, needle=None, binary=False):
            p = os.path.join(d, name)
            with open(p, "wb" if binary else "w") as f:
                f.write(content)
            expect(ck, T.pyxray(args.pyxray, "diff", good, p), code, what,
                   needle)

        expect(ck, T.pyxray(args.pyxray, "diff", good,
                            os.path.join(d, "missing.pxh")), 13,
               "a missing file", "missing.pxh")
        case("empty.pxh", "", FORMAT, "an empty file")
        case("json.pxh", '{"types": []}\n', FORMAT, "not a snapshot")
        case("binary.pxh", b"\x7fELF\x02\x01\x01\x00" * 64, FORMAT,
             "binary data", binary=True)
        case("cut.pxh", text[:len(text) // 2], FORMAT, "cut short")
        i = text.index("\nt\t") + 5
        flipped = text[:i] + ("7" if text[i] != "7" else "8") + text[i + 1:]
        case("flipped.pxh", flipped, FORMAT, "one byte changed", "checksum")
        case("v2.pxh", with_crc(body_of(text).replace(
            "pyxray-heap-snapshot\t2", "pyxray-heap-snapshot\t9", 1)),
            FORMAT, "another format version", "version")
        lines = body_of(text).splitlines(True)
        # version 1 (no damage lines) is still read
        v1 = [l for l in lines if l.split("\t")[0] not in
              ("partial", "damaged_lists", "bad_objects")]
        ck.ok(len(v1) == len(lines) - 3, "the snapshot has the 3 damage "
              "lines of version 2")
        p = os.path.join(d, "v1.pxh")
        with open(p, "w") as f:
            f.write(with_crc("".join(v1).replace(
                "pyxray-heap-snapshot\t2", "pyxray-heap-snapshot\t1", 1)))
        res = T.pyxray(args.pyxray, "diff", good, p, "--json")
        ck.ok(res.rc == 0 and res.json()["growth"] == [],
              "a version 1 snapshot is still read", res.describe())
        case("v1damage.pxh", with_crc(body_of(text).replace(
            "pyxray-heap-snapshot\t2", "pyxray-heap-snapshot\t1", 1)),
            FORMAT, "version 1 with version 2's lines", "line 15")
        case("partial.pxh", with_crc(body_of(text).replace(
            "\npartial\t0\n", "\npartial\t1\n", 1)), FORMAT,
            "partial without a reason", "partial")
        bad_total = [("gc_objects\t999999999\n" if l.startswith("gc_objects\t")
                      else l) for l in lines]
        case("total.pxh", with_crc("".join(bad_total)), FORMAT,
             "totals that do not match the rows", "totals")
        unsorted = [l for l in lines if not l.startswith("t\t")]
        rows = [l for l in lines if l.startswith("t\t")]
        k = unsorted.index([l for l in unsorted if l.startswith("types\t")][0])
        case("unsorted.pxh", with_crc("".join(unsorted[:k + 1] + rows[::-1] +
                                              unsorted[k + 1:])), FORMAT,
             "rows out of order")
        other = body_of(text).replace(
            "python_version\t", "python_version\t9.", 1)
        case("other.pxh", with_crc(other), UNSUPPORTED,
             "a snapshot from another Python version", "9.")
        tonly = os.path.join(d, "tracked.pxh")
        res = T.pyxray(args.pyxray, "census", fx.pid, "--save", tonly,
                       "--tracked-only", timeout=120)
        expect(ck, T.pyxray(args.pyxray, "diff", good, tonly), USAGE,
               "a tracked-only census against a full one", "tracked-only")

        for argv, what in (
                (["census"], "no PID"),
                (["census", "abc"], "a PID that is not a number"),
                (["census", str(fx.pid), "--sort", "name"], "a bad --sort"),
                (["census", str(fx.pid), "--interval", "-1"],
                 "a negative --interval"),
                (["census", str(fx.pid), "--top"], "--top without a value"),
                (["diff", good], "diff with one file")):
            expect(ck, T.pyxray(args.pyxray, *argv), USAGE, what)
        expect(ck, T.pyxray(args.pyxray, "census", T.free_pid()), NO_PROCESS,
               "no such process")

        # the target dies while held stopped: the copy fails cleanly
        p = T.spawn([args.pyxray, "census", str(fx.pid), "--hold-ms", "1500"],
                    stdout=T.subprocess.PIPE, stderr=T.subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not T.stopped_threads(fx.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        held = bool(T.stopped_threads(fx.pid))
        os.kill(fx.pid, signal.SIGKILL)
        out, err = p.communicate(timeout=60)
        res = T.Result(p.args, p.returncode, out.decode(), err.decode(), 0)
        if p in T._children:
            T._children.remove(p)
        ck.ok(held, "pyxray held the target stopped")
        ck.ok(res.rc in (EXITED, NO_PROCESS) and
              T.one_line_stderr(res) is None and "exited" in res.err,
              "target killed during the census: exit 8, one line",
              res.describe())
    finally:
        fx.stop()
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
