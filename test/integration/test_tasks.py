#!/usr/bin/env python3
"""pyxray tasks and stacks --async against fixtures/asyncio_target.py, one
Python.

The fixture runs three event loops (the main thread's and two threads'),
with a server awaiting a handler task, workers gathered by a supervisor, a
TaskGroup (3.11+), a shielded task, a sleeping watchdog, a pure-Python Task,
a done task and an await cycle; it writes each loop's asyncio.all_tasks(),
each task's cr_await chain, its _fut_waiter and who awaits whom.  Checks:
  - tasks --json: every pending task of the truth, and no other pending
    one; for each: name, state, coroutine_stack (function, file, line,
    innermost first), awaiting (the _fut_waiter's type and address),
    awaited_by (the names, by construction), thread_id of its loop;
  - tasks --tree: every task under each task that awaits it, the cycle
    reported and not followed;
  - stacks --async --json: each thread's tasks are the tasks of the loop it
    runs;
  - no thread is left stopped.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402

TARGET = os.path.join(T.FIXTURES, "asyncio_target.py")


def start(python, timeout=60):
    truth = os.path.join(T.tmpdir(), "truth.json")
    return T.start_fixture([python, TARGET, truth, "--lifetime", "240"],
                           truth, timeout)


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    version = T.check_target_python(args.python)
    sp = T.spec(args.python)
    ck = T.Checker("tasks %s (%s)" % (args.python, version))
    p, logf, truth = start(args.python)
    try:
        pid = p.pid
        res = T.pyxray(args.pyxray, "tasks", pid, "--json")
        if not ck.ok(res.rc == 0, "tasks --json exits 0", res.describe()):
            return ck.finish()
        got = res.json()
        by_addr = dict((t["addr"], t) for t in got["tasks"])
        names = dict((t["addr"], t["name"]) for t in got["tasks"])
        want = [t for t in truth["tasks"] if t["state"] == "pending"]
        ck.ok(got["error"] is None, "the task list is complete",
                 got["error"])
        missing = [t["name"] for t in want if t["addr"] not in by_addr]
        ck.ok(not missing, "every pending task is found (%d)" % len(want),
                 "missing %s" % missing)
        extra = [t["name"] for t in got["tasks"] if t["state"] == "pending"
                 and t["addr"] not in set(w["addr"] for w in want)]
        ck.ok(not extra, "no pending task that asyncio does not know",
                 "extra %s" % extra)
        for w in want:
            g = by_addr.get(w["addr"])
            if g is None:
                continue
            n = w["name"]
            ck.ok(g["name"] == n and g["state"] == "pending",
                     "%s: name and state" % n, "%s %s" % (g["name"], g["state"]))
            stack = [(f["function"], sp.outside(f["file"]), f["line"])
                     for f in g["coroutine_stack"]]
            tstack = [(f["function"], sp.outside(f["file"]), f["line"])
                      for f in w["coroutine_stack"]]
            ck.ok(stack == tstack, "%s: coroutine stack" % n,
                     "got %s, want %s" % (stack, tstack))
            ck.ok(g["awaiting"] == w["awaiting"], "%s: awaiting" % n,
                     "got %s, want %s" % (g["awaiting"], w["awaiting"]))
            aw = sorted(names.get(a["addr"], "?") for a in g["awaited_by"])
            ck.ok(aw == w["awaited_by"], "%s: awaited by" % n,
                     "got %s, want %s" % (aw, w["awaited_by"]))
            ck.ok(g["thread_id"] == w["thread_id"], "%s: thread" % n,
                     "got %s, want %s" % (g["thread_id"], w["thread_id"]))
        fin = [t for t in got["tasks"] if t["name"] == "finished"]
        ck.ok(all(t["state"] == "done" for t in fin),
                 "a done task is reported done", fin)

        # --tree: a child line is below its parent's, one level deeper;
        # the cycle is reported.
        res = T.pyxray(args.pyxray, "tasks", pid, "--tree")
        ck.ok(res.rc == 0, "tasks --tree exits 0", res.describe())
        lines = res.out.splitlines()

        def depth_of(name):
            out = []
            for i, line in enumerate(lines):
                k = line.find('(T) "%s"' % name)
                if k >= 0:
                    out.append((i, k))
            return out
        for w in want:
            for parent in w["awaited_by"]:
                if w["name"].startswith("cycle"):
                    continue
                ok = any(pi < ci and ck_ == pk + 4
                         for pi, pk in depth_of(parent)
                         for ci, ck_ in depth_of(w["name"]))
                ck.ok(ok, "tree: %s under %s" % (w["name"], parent),
                         res.out[-3000:])
        ck.ok("an await cycle" in res.out, "tree: the cycle is reported",
                 res.out[-2000:])

        # stacks --async: the tasks of each thread's loop with the thread.
        res = T.pyxray(args.pyxray, "stacks", pid, "--async", "--json")
        if ck.ok(res.rc == 0, "stacks --async exits 0", res.describe()):
            st = res.json()
            for th in st["threads"]:
                mine = sorted(t["addr"] for t in th["tasks"]
                              if t["state"] == "pending")
                twant = sorted(t["addr"] for t in want
                               if t["thread_id"] == th["thread_id"])
                ck.ok(mine == twant, "stacks --async: thread %s's tasks"
                         % th["thread_id"], "got %d, want %d" % (
                             len(mine), len(twant)))
            ck.ok(not [t for t in st["other_tasks"]
                          if t["state"] == "pending"],
                     "stacks --async: every pending task has its thread",
                     st["other_tasks"])
        res = T.pyxray(args.pyxray, "stacks", pid, "--async")
        ck.ok(res.rc == 0 and "asyncio tasks of its event loop" in res.out,
                 "stacks --async text", res.describe())
        stopped = T.stopped_threads(pid)
        ck.ok(not stopped, "no thread left stopped", stopped)
    finally:
        T.kill_child(p)
        logf.close()
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
