"""Every layout provider gives the same stacks, and the truth.

For a Python with DWARF: `--layout dwarf` and `--layout table` (the built-in
table) must both match the fixture's truth, frame by frame and name by name;
on 3.13, `--layout debug-offsets` (the interpreter's own _Py_DebugOffsets
alone, no DWARF, no table) must give the same frames.  For a stripped Python:
`--layout dwarf` must refuse with exit 7 naming the file, and the table must
match the truth.  And for a Python with DWARF, `census --layout table` must
give every type the same count and bytes as `census --layout dwarf`.

  test_layouts.py --pyxray BIN --python PY     exit 0 pass, 1 fail, 77 skip
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402
import test_census as C  # noqa: E402
import test_stacks as S  # noqa: E402


def compare(chk, fx, doc, label, names=True):
    got = {t["thread_id"]: t for t in doc["threads"]}
    for tt in fx.truth["threads"]:
        g = got.get(tt["thread_id"])
        what = "%s: thread %s" % (label, tt["name"])
        if not chk.ok(g is not None, "%s is reported" % what):
            continue
        if names:
            chk.ok(g["name"] == tt["name"], "%s name (%r)" % (what, g["name"]))
        spin = fx.truth.get("spinner_lines") if tt["role"] == "spinner" else None
        diff = S.frame_diff(tt["frames"], g["frames"], spin)
        chk.ok(not diff, "%s frames match the truth" % what, "\n".join(diff))


def stacks(chk, args, fx, mode):
    res = T.pyxray(args.pyxray, "stacks", fx.pid, "--json", "--layout", mode)
    if not chk.ok(res.rc == 0, "stacks --layout %s" % mode, res.describe()):
        return None
    info = T.pyxray(args.pyxray, "info", fx.pid, "--json", "--layout", mode)
    if chk.ok(info.rc == 0, "info --layout %s" % mode, info.describe()):
        chk.ok(info.json()["layout"] == mode,
               "info says the layout came from %s (%s)" % (mode, info.json()["layout_from"]))
    return res.json()


def census_same(chk, args, python):
    fx = C.CensusFixture(python)
    try:
        docs = {}
        for mode in ("dwarf", "table"):
            res = T.pyxray(args.pyxray, "census", fx.pid, "--json", "--top", "0",
                           "--layout", mode, timeout=120)
            if not chk.ok(res.rc == 0, "census --layout %s" % mode, res.describe()):
                return
            docs[mode] = {t["type"]: (t["count"], t["bytes"]) for t in res.json()["types"]}
        diff = ["      %s: dwarf %s, table %s" % (k, docs["dwarf"].get(k), docs["table"].get(k))
                for k in sorted(set(docs["dwarf"]) | set(docs["table"]))
                if docs["dwarf"].get(k) != docs["table"].get(k)]
        chk.ok(not diff, "census: all %d types have the same count and bytes "
               "with the table as with the DWARF" % len(docs["dwarf"]), "\n".join(diff[:20]))
    finally:
        fx.stop()


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    version = T.check_target_python(args.python)
    dwarf, what = T.has_dwarf(args.python)
    chk = T.Checker("layouts %s (%s)" % (args.python, version))
    fx = T.Fixture(args.python, threads=3)
    try:
        if dwarf:
            doc = stacks(chk, args, fx, "dwarf")
            if doc:
                compare(chk, fx, doc, "dwarf")
        else:
            res = T.pyxray(args.pyxray, "stacks", fx.pid, "--layout", "dwarf")
            chk.ok(res.rc == 7 and not T.one_line_stderr(res) and
                   os.path.basename(what) in res.err,
                   "stripped: --layout dwarf refuses with exit 7 naming %s" % what,
                   res.describe())
        doc = stacks(chk, args, fx, "table")
        if doc:
            compare(chk, fx, doc, "table")
        if T.vtuple(version) >= (3, 13):
            doc = stacks(chk, args, fx, "debug-offsets")
            if doc:
                # _Py_DebugOffsets carries no dict internals: thread names
                # need the DWARF or the table.
                compare(chk, fx, doc, "debug-offsets", names=False)
        else:
            res = T.pyxray(args.pyxray, "stacks", fx.pid, "--layout", "debug-offsets")
            chk.ok(res.rc == 17 and not T.one_line_stderr(res),
                   "before 3.13, --layout debug-offsets says it is not supported",
                   res.describe())
        chk.ok(not T.wait_all_running(fx.pid, 1.0), "no thread of the target left stopped")
    finally:
        fx.stop()
    if dwarf:
        census_same(chk, args, args.python)
    return chk.finish()


if __name__ == "__main__":
    sys.exit(main())
