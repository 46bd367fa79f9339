#!/usr/bin/env python3
"""pyxray stacks --locals against fixtures/locals_target.py, one Python.

The fixture's thread "holder" blocks in inner() <- middle() <- outer(), with
known arguments and locals (str with quotes, escapes, non-ASCII and a C1
control, a long str, bytes, small and big ints, floats, bools, None,
containers, an instance, a cell variable); it writes each frame's f_locals
as its truth.  Checks, for each of the fixture's frames:
  - every bound name of f_locals is shown, and no other;
  - its kind: arg for the code's arguments, else local/cell/free;
  - its type (type(v).__name__);
  - its repr: repr(v) for str, bytes, int, float, bool and None (a cut one
    ends in "..." and is a prefix of the truth), "<T len=N>" for containers,
    "<T at 0x...>" otherwise;
  - the text output shows the same, escaped (no C0/C1 control reaches it);
  - stacks without --locals prints no locals (its JSON is unchanged);
  - tasks on a process that never imported asyncio: none, exit 0;
  - no thread is left stopped.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402

TARGET = os.path.join(T.FIXTURES, "locals_target.py")


def start(python, timeout=60):
    truth = os.path.join(T.tmpdir(), "truth.json")
    return T.start_fixture([python, TARGET, truth, "--lifetime", "240"],
                           truth, timeout)


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    version = T.check_target_python(args.python)
    sp = T.spec(args.python)
    ck = T.Checker("locals %s (%s)" % (args.python, version))
    p, logf, truth = start(args.python)
    try:
        pid = p.pid
        res = T.pyxray(args.pyxray, "stacks", pid, "--locals", "--json")
        if not ck.ok(res.rc == 0, "stacks --locals --json exits 0",
                     res.describe()):
            return ck.finish()
        got = res.json()
        th = [t for t in got["threads"] if t["thread_id"] == truth["thread_id"]]
        if not ck.ok(len(th) == 1, "the holder thread is found"):
            return ck.finish()
        mine = [f for f in th[0]["frames"]
                if os.path.basename(sp.outside(f["file"])) == "locals_target.py"]
        ck.ok([f["function"] for f in mine] ==
              [f["function"] for f in truth["frames"]],
              "the fixture's frames, innermost first",
              "%s" % [f["function"] for f in mine])
        for g, w in zip(mine, truth["frames"]):
            fn = w["function"]
            ck.ok(g["locals_error"] is None, "%s: locals read whole" % fn,
                  g["locals_error"])
            have = dict((l["name"], l) for l in g["locals"])
            ck.ok(sorted(have) == sorted(w["locals"]),
                  "%s: the bound names" % fn,
                  "got %s, want %s" % (sorted(have), sorted(w["locals"])))
            for name, t in sorted(w["locals"].items()):
                l = have.get(name)
                if l is None:
                    continue
                what = "%s: %s" % (fn, name)
                kind_ok = (l["kind"] == "arg") == (name in w["args"]) and \
                    l["kind"] in ("arg", "local", "cell", "free")
                ck.ok(kind_ok, what + " kind", l["kind"])
                ck.ok(l["type"] == t["type"], what + " type",
                      "got %s, want %s" % (l["type"], t["type"]))
                r = l["repr"]
                if t["repr"] is not None:
                    ok = r == t["repr"] or (r.endswith("...") and
                                            t["repr"].startswith(r[:-3]) and
                                            len(r) >= 64)
                elif t["len"] is not None:
                    ok = r == "<%s len=%d>" % (t["type"], t["len"])
                else:
                    ok = re.match(r"<%s at 0x[0-9a-f]+>$" % re.escape(t["type"]),
                                  r) is not None
                ck.ok(ok, what + " repr", "got %r, want %r" % (r, t))

        res = T.pyxray(args.pyxray, "stacks", pid, "--locals")
        ck.ok(res.rc == 0, "stacks --locals exits 0", res.describe())
        ck.ok("arg   path = '/srv/data' (str)" in res.out,
              "text: an argument with its repr", res.out[:3000])
        ck.ok("cell  captured = 'cell value' (str)" in res.out,
              "text: a cell variable", res.out[:3000])
        bad = [c for c in res.out if ord(c) < 0x20 and c not in "\n" or
               0x7f <= ord(c) <= 0x9f]
        ck.ok(not bad, "text: no control character from the target", bad)
        res = T.pyxray(args.pyxray, "stacks", pid, "--json")
        ck.ok(res.rc == 0 and '"locals"' not in res.out,
              "without --locals: no locals", res.describe())
        # asyncio is not even imported: no task, and no error
        res = T.pyxray(args.pyxray, "tasks", pid, "--json")
        ck.ok(res.rc == 0 and res.json()["tasks"] == [] and
              res.json()["error"] is None,
              "tasks without asyncio: none", res.describe())
        stopped = T.stopped_threads(pid)
        ck.ok(not stopped, "no thread left stopped", stopped)
    finally:
        T.kill_child(p)
        logf.close()
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
