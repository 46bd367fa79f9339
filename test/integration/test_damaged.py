#!/usr/bin/env python3
"""pyxray census and refs on a damaged heap (fixtures/damaged_target.py).

The fixture overwrites a set's mask with -1 and breaks one GC link (a list
in generation 0 whose _gc_prev does not point back), with the collector
disabled so that it never walks them itself.  pyxray must not crash (exit
0, no sanitizer report under the ASan build), must say the result is
partial (JSON "partial": true, "damaged_lists" 1 (0 with the set alone),
"bad_objects" >= 1; a "Partial result" line in the text; "partial 1" in a
saved snapshot), and
must still count what it could read.  Two fixtures: the set alone
(--damage set: every count exact), then both (--damage all):
  - Old (777, in the oldest generation, which is intact): exactly 777;
  - InSet (3, also there, held only by the damaged set): exactly 3;
  - Before (1234, in generation 0 before the bad link): exactly 1234: the
    walk follows generation 0 from its head and visits them first;
  - After (567, in generation 0 after the bad link): 0, since the list is
    ended at the bad link (the victim and all that follows it are lost);
  - the total of tracked objects: the truth's, less the lost tail (the
    victim, the list holding the After objects and the 567 of them), give
    or take the few objects the fixture allocated while writing its truth;
  - refs --type Old: 777 targets, all reached through the list in __main__.
"""

import os
import sys
import time
import json

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402

TARGET = os.path.join(T.FIXTURES, "damaged_target.py")
LOST_TAIL = 567 + 2  # the After objects, their list, the victim


class DamagedFixture(object):
    def __init__(self, python, damage, timeout=60):
        self.dir = T.tmpdir()
        self.truth_path = os.path.join(self.dir, "truth.json")
        self.log_path = os.path.join(self.dir, "fixture.log")
        self.logf = open(self.log_path, "w")
        self.proc = T.spawn([python, TARGET, self.truth_path, "--lifetime",
                             "240", "--damage", damage], stdout=self.logf,
                            stderr=T.subprocess.STDOUT)
        self.pid = self.proc.pid
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.truth_path):
            if self.proc.poll() is not None:
                raise RuntimeError("fixture exited %s: %s"
                                   % (self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                raise RuntimeError("fixture wrote no truth in %d s" % timeout)
            time.sleep(0.05)
        with open(self.truth_path) as f:
            self.truth = json.load(f)

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        T.kill_child(self.proc)
        self.logf.close()


def sane(res):
    """Exited normally, no crash, no sanitizer report."""
    return res.rc == 0 and "Sanitizer" not in res.err and \
        "runtime error:" not in res.err


def check_census(ck, fx, doc):
    truth = fx.truth
    gc = truth["damage"] != "set"
    types = {t["type"]: t for t in doc["types"]}
    got = {k: types.get(k, {}).get("tracked", 0) for k in truth["classes"]}
    want = dict(truth["classes"])
    if gc:
        want["__main__.After"] = 0
    ck.ok(got == want, "classes: Old, InSet, Before exact; After %s"
          % ("0 (after the bad link)" if gc else "exact"),
          "got %s, want %s (truth before the damage %s)"
          % (got, want, truth["classes"]))
    ck.ok(doc.get("partial") is True, "census JSON: partial true",
          "partial: %r" % doc.get("partial"))
    ck.ok(doc.get("damaged_lists", -1) == (1 if gc else 0),
          "census JSON: damaged_lists %d (%r)" % (1 if gc else 0,
                                                 doc.get("damaged_lists")))
    ck.ok(doc.get("bad_objects", 0) >= 1,
          "census JSON: the set counted as a damaged object (bad_objects %r)"
          % doc.get("bad_objects"))
    ck.ok(types.get("set", {}).get("tracked", 0) >= 1,
          "the damaged set is still counted as a set")
    total = sum(truth["counts"].values())
    lost = LOST_TAIL if gc else 0
    expect = total - lost
    ck.ok(abs(doc["gc_objects"] - expect) <= max(20, expect // 200),
          "tracked objects %d: the truth %d less the lost tail %d"
          % (doc["gc_objects"], total, lost))


def run(ck, args, py, version, damage):
    T.log("-- damage: %s" % damage)
    try:
        fx = DamagedFixture(py, damage)
    except RuntimeError as e:
        if "unexpected" in str(e):
            T.skip(py, version, "the fixture cannot damage this build: %s"
                   % e)
        raise
    nlists = 0 if damage == "set" else 1
    try:
        pid = fx.pid
        res = T.pyxray(args.pyxray, "census", pid, "--json", timeout=120)
        if ck.ok(sane(res), "census --json: exit 0, no crash",
                 res.describe()):
            check_census(ck, fx, res.json())
        ck.ok(not T.wait_all_running(pid), "no thread left stopped")

        res = T.pyxray(args.pyxray, "census", pid, timeout=120)
        ck.ok(sane(res) and "Partial result" in res.out,
              "census text: exit 0, says 'Partial result'", res.describe())

        pxh = os.path.join(fx.dir, "damaged.pxh")
        res = T.pyxray(args.pyxray, "census", pid, "--save", pxh,
                       timeout=120)
        lines = {}
        if sane(res) and os.path.exists(pxh):
            with open(pxh) as f:
                for line in f:
                    k, _, v = line.rstrip("\n").partition("\t")
                    lines.setdefault(k, v)
        ck.ok(lines.get("partial") == "1" and
              int(lines.get("damaged_lists", "-1")) == nlists and
              int(lines.get("bad_objects", "0")) >= 1,
              "census --save: the snapshot says partial, with its counts",
              res.describe() + "\n%r" % lines)
        res = T.pyxray(args.pyxray, "diff", pxh, pxh, "--json")
        ck.ok(sane(res), "the partial snapshot loads (diff)", res.describe())

        res = T.pyxray(args.pyxray, "refs", pid, "--type", "__main__.Old",
                       "--json", timeout=120)
        if ck.ok(sane(res), "refs --type Old --json: exit 0, no crash",
                 res.describe()):
            doc = res.json()
            ck.ok(doc["targets"] == 777, "refs: 777 Old targets (%d)"
                  % doc["targets"])
            ck.ok(doc["unreachable"] == 0 and doc["groups"] and
                  doc["groups"][0]["count"] == 777,
                  "refs: one path holds the 777", json.dumps(doc["groups"])
                  [:2000])
            ck.ok(doc.get("partial") is True and
                  doc.get("damaged_lists", -1) == nlists and
                  doc.get("bad_objects", 0) >= 1,
                  "refs JSON: partial true, damaged_lists %d, "
                  "bad_objects >= 1" % nlists,
                  "partial %r damaged_lists %r bad_objects %r"
                  % (doc.get("partial"), doc.get("damaged_lists"),
                     doc.get("bad_objects")))
        res = T.pyxray(args.pyxray, "refs", pid, "--type", "__main__.InSet",
                       timeout=120)
        ck.ok(sane(res) and "Partial result" in res.out and
              "Targets: 3 x" in res.out,
              "refs --type InSet text: exit 0, 3 targets, 'Partial result'",
              res.describe())
        ck.ok(fx.proc.poll() is None, "the target is still alive")
    finally:
        fx.stop()


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    py = args.python
    version = T.check_target_python(py)
    ck = T.Checker("damaged heap %s (%s)" % (py, version))
    for damage in ("set", "all"):
        run(ck, args, py, version, damage)
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
