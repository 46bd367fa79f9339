"""The replay check of synthetic images (lib/target/image.c): capture a live
target with test/tools/pyx-image-capture, replay the image, and compare
with what pyxray reads from the live target.

  test_image.py --pyxray BIN --python PY      exit 0 pass, 1 fail, 77 skip

- a whole capture (--budget 0) replays to the live stacks (every thread's
  frames: function, file, line), the live census (every type's count and
  bytes) and the live refs' targets;
- the capture's own run of the stacks walk and the census (on the
  recording target) and the replay's agree line for line;
- a seed-sized capture (--budget 32768, the GC lists cut) replays exactly
  as it was captured, and stays under 256 KiB.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402

TARGET = r"""
import sys, threading, time
class Leaf(object):
    def __init__(self, i):
        self.i = i
        self.name = "leaf%d" % i
keep = [Leaf(i) for i in range(5)]
table = {"k": (1, 2), "s": {1, 2, 3}, "b": b"bytes", "f": 1.5}
ready = threading.Event()
def worker():
    def inner():
        ready.set()
        time.sleep(1000)
    inner()
threading.Thread(target=worker, daemon=True, name="worker").start()
ready.wait()
def main():
    open(sys.argv[1], "w").write("ready")
    time.sleep(1000)
main()
"""


def tool_path(args):
    build = os.environ.get("PYX_BUILD_DIR") or os.path.dirname(args.pyxray)
    return os.path.join(build, "test", "pyx-image-capture")


def stacks_of(text):
    """{thread_id: [(function, file, line)]} from the tool's output."""
    threads, cur = {}, None
    for line in text.splitlines():
        if line.startswith("thread "):
            cur = int(line.split()[1], 16)
            threads[cur] = []
        elif line.startswith("  frame ") and cur is not None:
            fn, rest = line[len("  frame "):].split(" ", 1)
            path, _, lineno = rest.rpartition(":")
            threads[cur].append((fn, path, int(lineno)))
    return threads


def census_of(text):
    """({type: (count, bytes)}, header line) from the tool's output."""
    types, head = {}, None
    for line in text.splitlines():
        if line.startswith("census:"):
            head = line
        elif line.startswith("  type "):
            w = line.split()
            # "  type NAME count C bytes B": names have no spaces
            types[w[1]] = (int(w[3]), int(w[5]))
    return types, head


def section(text, prefixes):
    return [l for l in text.splitlines() if l.split(" ", 1)[0] in prefixes
            or (l.startswith("  ") and l.split()[0] in ("frame", "type"))]


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    if T._spec_of(args.python) is not None:
        T.skip(args.python, None, "the capture tool attaches to host "
               "processes only")
    T.check_target_python(args.python)
    tool = tool_path(args)
    if not os.access(tool, os.X_OK):
        T.log("FAIL: %s not built" % tool)
        return T.FAIL
    failures = []

    def check(ok, what):
        if not ok:
            failures.append(what)
            T.log("FAIL: " + what)
        elif args.verbose:
            T.log("ok: " + what)

    tmp = T.tmpdir()
    ready = os.path.join(tmp, "ready")
    script = os.path.join(tmp, "image_target.py")
    with open(script, "w") as f:
        f.write(TARGET)
    p = T.spawn([args.python, "-S", "-I", script, ready])
    try:
        for _ in range(300):
            if os.path.exists(ready) or p.poll() is not None:
                break
            time.sleep(0.05)
        if not os.path.exists(ready):
            T.log("FAIL: the target did not start")
            return T.FAIL
        time.sleep(0.2)
        pid = p.pid

        live_stacks = T.pyxray(args.pyxray, "stacks", "--json", pid)
        live_census = T.pyxray(args.pyxray, "census", "--json", pid)
        live_refs = T.pyxray(args.pyxray, "refs", "--json", "--type",
                             "__main__.Leaf", pid)
        for r in (live_stacks, live_census, live_refs):
            if r.rc != 0:
                T.log("FAIL: live pyxray: " + r.describe())
                return T.FAIL
        img = os.path.join(tmp, "whole.img")
        cap = T.run([tool, str(pid), "-o", img, "--budget", "0", "--type",
                     "__main__.Leaf"], timeout=120)
        seed = os.path.join(tmp, "seed.img")
        cap_seed = T.run([tool, str(pid), "-o", seed, "--budget", "32768"],
                         timeout=120)
    finally:
        T.kill_child(p)
    for r in (cap, cap_seed):
        if r.rc != 0:
            T.log("FAIL: capture: " + r.describe())
            return T.FAIL
    T.log(cap.err.strip())
    T.log(cap_seed.err.strip())
    rep = T.run([tool, "--replay", img, "--type", "__main__.Leaf"],
                timeout=120)
    rep_seed = T.run([tool, "--replay", seed], timeout=120)
    for r in (rep, rep_seed):
        if r.rc != 0:
            T.log("FAIL: replay: " + r.describe())
            return T.FAIL

    # The recording run and the replay: same stacks, same census.
    keep = ("stacks:", "thread", "census:")
    check(section(cap.out, keep) == section(rep.out, keep),
          "whole capture: the replay's stacks and census equal the "
          "recording run's")
    check(section(cap_seed.out, keep) == section(rep_seed.out, keep),
          "seed capture: the replay's stacks and census equal the "
          "recording run's")
    size = os.path.getsize(seed)
    check(size < 256 * 1024, "seed capture is %d bytes (< 256 KiB)" % size)

    # The replay and the live target.
    got = stacks_of(rep.out)
    want = {}
    for t in live_stacks.json()["threads"]:
        want[t["thread_id"]] = [(f["function"], f["file"], f["line"])
                                for f in t["frames"]]
    check(got == want, "replayed stacks equal the live ones: %r / %r"
          % (got, want))
    check(any(fr[0] == "main" for fs in got.values() for fr in fs)
          and any("inner" in fr[0] for fs in got.values() for fr in fs),
          "replayed stacks show main() and inner()")

    types, head = census_of(rep.out)
    lc = live_census.json()
    live_types = dict((t["type"], (t["count"], t["bytes"]))
                      for t in lc["types"])
    diff = sorted(set(types.items()) ^ set(live_types.items()))
    check(not diff, "replayed census equals the live one by type "
          "(differences: %r)" % diff[:10])
    check(head is not None and (" objects %d " % lc["objects"]) in head,
          "replayed census has the live object count %d: %s"
          % (lc["objects"], head))
    check(types.get("__main__.Leaf", (0, 0))[0] == 5,
          "replayed census counts 5 __main__.Leaf")

    refs_line = [l for l in rep.out.splitlines() if l.startswith("refs ")]
    lr = live_refs.json()
    want_t = lr.get("targets", lr.get("target_count"))
    check(refs_line and (" targets %s " % want_t) in refs_line[0],
          "replayed refs find the live %s targets: %s"
          % (want_t, refs_line))
    if failures:
        T.log("FAIL: %d check(s) failed" % len(failures))
        return T.FAIL
    T.log("PASS: image replay on %s" % args.python)
    return T.PASS


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        T.cleanup()
