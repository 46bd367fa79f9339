#!/usr/bin/env python3
"""pyxray census --jobs N against fixtures/census_target.py, one Python.

The census counts on N threads (issue 15); its result must not depend on N.
Checks:
  - census --json with --jobs 1, 2 and 4 on the same idle fixture: the
    type tables (every type's tracked and reached counts and bytes) and the
    totals are identical, and "jobs" says how many threads counted;
  - the census on 4 threads matches the fixture's in-process truth
    (gc.get_objects() and sys.getsizeof) as test_census.py checks it;
  - the text report says how many threads counted; --jobs 0 and 65 are
    usage errors (exit 2); no thread is left stopped;
  - a thread that fails (test hook PYX_TEST_CENSUS_FAIL: out of memory)
    ends the census with its error and detail (exit 12).
The fixture idles between the censuses (a sleep loop), so its heap is the
same for each; a census on one thread is taken before and after the others,
and a round whose two agree is the one compared (a heap that moved in
between is retried, never compared).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402
from test_census import CensusFixture, check_counts  # noqa: E402

JOBS = (2, 4)
EXIT_NOMEM = 12
ROUNDS = 3
# What must not depend on the number of threads.
TOTALS = ("gc_objects", "gc_bytes", "reached_objects", "reached_bytes",
          "objects", "bytes", "ntypes", "bad_objects", "bad_refs",
          "damaged_lists", "permanent_generation", "interpreters")


def census(ck, pyxray, pid, jobs):
    res = T.pyxray(pyxray, "census", pid, "--json", "--no-placement",
                   "--top", "0", "--jobs", str(jobs), timeout=120)
    if not ck.ok(res.rc == 0, "census --jobs %d exits 0" % jobs,
                 res.describe()):
        return None
    return res.json()


def table(doc):
    """What the result is, without what describes the run (times, jobs)."""
    return ([dict(t) for t in doc["types"]],
            {k: doc.get(k) for k in TOTALS})


def differences(a, b):
    ta = {t["type"]: t for t in a["types"]}
    tb = {t["type"]: t for t in b["types"]}
    out = []
    for name in sorted(set(ta) | set(tb)):
        if ta.get(name) != tb.get(name):
            out.append("%s: %s vs %s" % (name, ta.get(name), tb.get(name)))
    for k in TOTALS:
        if a.get(k) != b.get(k):
            out.append("%s: %s vs %s" % (k, a.get(k), b.get(k)))
    if not out and a["types"] != b["types"]:
        out.append("the same rows in another order")
    return out


def case_thread_fails(ck, args, pid):
    """One census thread fails (test hook: out of memory at its second
    chunk): the census stops and says why, exit 12, nothing left behind."""
    os.environ["PYX_TEST_CENSUS_FAIL"] = "2"
    try:
        res = T.pyxray(args.pyxray, "census", pid, "--json", "--jobs", "2",
                       "--no-placement", timeout=60)
    finally:
        del os.environ["PYX_TEST_CENSUS_FAIL"]
    if res.rc == 0:
        T.log("SKIP PART: a failing census thread: pyxray was built "
              "without PYX_TEST_HOOKS")
        return
    ck.ok(res.rc == EXIT_NOMEM and "test hook: a census thread ran out of "
          "memory" in res.err and not res.out.strip(),
          "a census thread fails: the error and its detail, exit %d"
          % EXIT_NOMEM, res.describe())
    ck.ok(res.wall < 30, "... and the census ends (%.1f s)" % res.wall)


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    py = args.python
    version = T.check_target_python(py)
    ck = T.Checker("census --jobs %s (%s)" % (py, version))
    fx = CensusFixture(py)
    try:
        pid = fx.pid
        docs = None
        for attempt in range(ROUNDS):
            before = census(ck, args.pyxray, pid, 1)
            many = [census(ck, args.pyxray, pid, j) for j in JOBS]
            after = census(ck, args.pyxray, pid, 1)
            if before is None or after is None or None in many:
                return ck.finish()
            if table(before) == table(after):
                docs = [before] + many
                break
            T.log("  info round %d: the heap moved between the two "
                  "one-thread censuses (%s): again" % (
                      attempt + 1, "; ".join(differences(before, after)[:3])))
        if not ck.ok(docs is not None, "an idle fixture: two one-thread "
                     "censuses agree within %d rounds" % ROUNDS):
            return ck.finish()
        one = docs[0]
        ck.ok(one.get("jobs") == 1, "--jobs 1: \"jobs\" is 1 (%r)"
              % one.get("jobs"))
        for j, doc in zip(JOBS, docs[1:]):
            ck.ok(doc.get("jobs") == j, "--jobs %d: \"jobs\" is %d (%r)"
                  % (j, j, doc.get("jobs")))
            diff = differences(one, doc)
            ck.ok(not diff, "--jobs %d: the same %d types and totals as on "
                  "one thread (%d objects, %d reached)"
                  % (j, len(one["types"]), one["objects"],
                     one["reached_objects"]), "\n".join(diff[:30]))
        T.log("  info walk_ms: %s" % ", ".join(
            "%d jobs %.1f" % (d["jobs"], d["walk_ms"]) for d in docs))
        # The parallel census is right, not only the same.
        check_counts(ck, fx, docs[-1])

        res = T.pyxray(args.pyxray, "census", pid, "--jobs", "2",
                       "--no-placement", timeout=120)
        ck.ok(res.rc == 0 and "on 2 threads" in res.out,
              "the text report says it counted on 2 threads", res.describe())
        for bad in ("0", "65", "x"):
            res = T.pyxray(args.pyxray, "census", pid, "--jobs", bad,
                           timeout=30)
            ck.ok(res.rc == 2 and "--jobs" in res.err,
                  "--jobs %s: a usage error, exit 2" % bad, res.describe())
        case_thread_fails(ck, args, pid)
        ck.ok(not T.wait_all_running(pid), "no thread left stopped")
    finally:
        fx.stop()
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
