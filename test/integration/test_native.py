"""pyxray stacks --native against a live native_target.py: threads blocked in
known C calls, compared with the truth the target computed about itself,
with `pyxray stacks --json` (no --native) and with gdb's backtraces.

  test_native.py --pyxray BIN --python PY      exit 0 pass, 1 fail, 77 skip

Checks, per thread of the fixture:
  * the merged stack shows the blocking C function (clock_nanosleep, a
    futex wait, recv, read, pause) before (innermore than) the Python
    function that called it, and the Python frames, in order, are exactly
    those of `pyxray stacks --json`, and those of the truth;
  * the C thread without a Python thread state is shown, by its comm, with
    only native frames, blocked in pause;
  * every non-inlined native function pyxray names for a thread appears in
    gdb's `thread apply all bt` of that thread (by LWP), in the same order
    (gdb also shows frames pyxray does not: tail calls it reconstructs, the
    evaluation loop pyxray replaces by Python frames);
and: --native with --nonblocking is a usage error (exit 2); JSON without
--native has no native keys; killing pyxray (SIGTERM, SIGKILL) while it
holds the target for --native leaves the target running.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402

NATIVE_TARGET = os.path.join(T.FIXTURES, "native_target.py")
PY_KEYS = ("function", "name", "file", "line", "entry")
NATIVE_KEYS = ("native", "function", "library", "file", "line", "address")
HOLD_MS = 3000


class NativeFixture(object):
    """native_target.py under a given Python; .truth is its truth JSON."""

    def __init__(self, python, timeout=30):
        self.spec = T.spec(python)
        self.dir = T.tmpdir()
        self.truth_path = os.path.join(self.dir, "truth.json")
        self.log_path = os.path.join(self.dir, "fixture.log")
        self.logf = open(self.log_path, "w")
        self.proc = T.spawn([python, NATIVE_TARGET, self.truth_path,
                             "--lifetime", "300"],
                            stdout=self.logf, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.truth_path):
            if self.proc.poll() is not None:
                raise RuntimeError("fixture exited %s: %s" % (
                    self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                raise RuntimeError("fixture wrote no truth: %s" % self.log())
            time.sleep(0.05)
        with open(self.truth_path) as f:
            self.truth = json.load(f)

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        T.kill_child(self.proc)
        self.logf.close()


def norm(name):
    """A C function's name without the decorations that differ between
    DWARF, symbol tables and gdb: __GI_ aliases, leading underscores,
    symbol versions."""
    if not name:
        return None
    name = name.split("@")[0]
    name = re.sub(r"^_*(GI_)?_*", "", name)
    return name


def fmt(f):
    if f.get("native"):
        return "[C] %s (%s) %s:%s %s%s" % (
            f.get("function"), os.path.basename(f.get("library") or "?"),
            f.get("file"), f.get("line"), f.get("address"),
            " inlined" if f.get("inlined") else "")
    return "[py] %s %s:%s%s" % (f.get("function"), f.get("file"),
                                f.get("line"), " entry" if f.get("entry")
                                else "")


def dump(frames):
    return "\n".join("        #%-2d %s" % (i, fmt(f))
                     for i, f in enumerate(frames))


def by_native_id(doc, key="native_thread_id"):
    """Threads by TID: the host's (native_thread_id), or the target's own
    (ns_native_thread_id: what its truth says in a PID namespace)."""
    return {t.get(key): t for t in doc.get("threads") or []}


def truth_key(spec):
    """The key of pyxray's JSON that the truth's native_thread_id is."""
    return "ns_native_thread_id" if spec.in_pid_namespace() \
        else "native_thread_id"


def unnamed_libc(f):
    return f.get("native") and not f.get("function") and \
        os.path.basename(f.get("library") or "").startswith("libc.so")


def blocked_in(frames, wanted, end, libc_unnamed):
    """Whether the innermost frames (up to index end) show the blocking C
    call: one named in wanted; with libc_unnamed (a libc without its debug
    file, whose internal functions have no symbol), also a stack whose
    innermost frames are unnamed libc ones with no other name before."""
    named = [i for i, f in enumerate(frames[:end]) if f.get("native")
             and norm(f.get("function")) in wanted]
    if named:
        return True, None
    if not libc_unnamed or not frames or not unnamed_libc(frames[0]):
        return False, None
    run = 0
    while run < end and unnamed_libc(frames[run]):
        run += 1
    return True, "%d unnamed libc frame(s) innermost" % run


def run_json(chk, args, pid, *extra):
    res = T.pyxray(args.pyxray, "stacks", pid, "--json", *extra)
    what = "stacks --json %s" % " ".join(extra)
    if not chk.ok(res.rc == 0, "%s exits 0" % what, "      " +
                  res.describe()):
        return None, res
    try:
        return res.json(), res
    except ValueError as e:
        chk.fail("%s prints one JSON object" % what, "      %s" % e)
        return None, res


def check_schema(chk, doc):
    problems = []
    if doc.get("native") is not True:
        problems.append("top-level native is not true")
    for t in doc.get("threads") or []:
        for k in ("python", "native_error", "frames"):
            if k not in t:
                problems.append("thread %s: no %r" % (
                    t.get("native_thread_id"), k))
        for f in t.get("frames") or []:
            keys = NATIVE_KEYS if f.get("native") else PY_KEYS
            miss = [k for k in keys if k not in f]
            if "native" not in f or miss:
                problems.append("thread %s: frame %s lacks %s" % (
                    t.get("native_thread_id"), fmt(f), miss or "native"))
            if f.get("native") and not re.match(r"^0x[0-9a-f]+$",
                                                str(f.get("address"))):
                problems.append("address %r is not a hex string"
                                % f.get("address"))
    chk.ok(not problems, "--native JSON: every frame has its keys",
           "\n".join("      " + p for p in problems[:20]))


def libc_without_debug_file(spec):
    """(True, why) when the test bed root's libc has no debug file where
    pyxray looks for the target's (the root's /usr/lib/debug in container
    mode, the host's in hostld mode): only its exported functions have
    names then.  (False, None) for a host Python."""
    if spec.kind != "root":
        return False, None
    libc = os.path.join(spec.root, "usr/lib/x86_64-linux-gnu/libc.so.6")
    bid = T.build_id(libc)
    if bid:
        dbg = os.path.join(spec.target_root(), "usr/lib/debug/.build-id/"
                           "%s/%s.debug" % (bid[:2], bid[2:]))
        if os.path.exists(dbg):
            return False, None
    return True, "the root's libc (build-id %s) has no debug file in %s " \
        "mode" % (bid, spec.mode)


def check_thread(chk, tt, got, plain, libc_unnamed=False):
    label = "thread %s (%s)" % (tt["role"], tt["native_thread_id"])
    frames = got.get("frames") or []
    py = [f for f in frames if not f.get("native")]
    stripped = [{k: f.get(k) for k in PY_KEYS} for f in py]
    want = [{k: f.get(k) for k in PY_KEYS} for f in plain.get("frames") or []]
    chk.ok(stripped == want, "%s: Python frames equal those without "
           "--native (%d)" % (label, len(want)),
           "      --native:\n%s\n      plain:\n%s" % (dump(py), dump(
               plain.get("frames") or [])))
    truth = [(f["function"], f["name"], f["file"], f["line"])
             for f in tt["frames"]]
    got_t = [(f.get("function"), f.get("name"), f.get("file"), f.get("line"))
             for f in py]
    chk.ok(got_t == truth, "%s: Python frames equal the truth" % label,
           "      got:\n%s\n      truth: %s" % (dump(py), truth))
    caller = [i for i, f in enumerate(frames)
              if not f.get("native") and f.get("function") == tt["caller"]]
    wanted = set(norm(n) for n in tt["native"])
    ok = bool(caller) and all(f.get("native") for f in frames[:caller[0]])
    how = None
    if ok:
        ok, how = blocked_in(frames, wanted, caller[0], libc_unnamed)
    chk.ok(ok, "%s: %s (native) runs inside %s (Python)%s" % (
        label, "/".join(tt["native"][:3]) if how is None else how,
        tt["caller"], "" if how is None else " (libc has no debug file "
        "here: its internal functions are unnamed)"),
        "      stack:\n%s" % dump(frames))
    chk.ok(got.get("native_error") is None, "%s: no native_error" % label,
           "      %r" % got.get("native_error"))
    chk.ok(got.get("python") is True, "%s: python is true" % label)


def check_helper(chk, truth, got, libc_unnamed=False):
    h = truth["helper"]
    label = "C helper thread %d" % h["native_thread_id"]
    if not chk.ok(got is not None, "%s is shown" % label):
        return
    frames = got.get("frames") or []
    chk.ok(got.get("python") is False and got.get("name") == h["comm"],
           "%s: python false, named %r" % (label, h["comm"]),
           "      python %r name %r" % (got.get("python"), got.get("name")))
    chk.ok(frames and all(f.get("native") for f in frames),
           "%s: only native frames" % label, dump(frames))
    wanted = set(norm(n) for n in h["native"])
    if not libc_unnamed:
        chk.ok(bool(frames) and norm(frames[0].get("function")) in wanted,
               "%s: blocked in pause" % label, dump(frames))
        return
    # Without libc's debug file, pause's own callees (the cancellable
    # syscall) have no symbol: pause is the first name, under them.
    run = 0
    while run < len(frames) and unnamed_libc(frames[run]):
        run += 1
    chk.ok(run < len(frames) and norm(frames[run].get("function")) in wanted,
           "%s: blocked in pause (under %d unnamed libc frame(s): libc has "
           "no debug file here)" % (label, run), dump(frames))


# --------------------------------------------------------------------------
# gdb

GDB_THREAD = re.compile(r"^Thread \d+ \(.*?LWP (\d+)\)")
GDB_FRAME = re.compile(r"^#(\d+)\s+(?:(0x[0-9a-f]+) in )?(\S+) ")


GDB_ARGV = ["gdb", "-nx", "-batch", "-iex", "set debuginfod enabled off",
            "-iex", "set auto-load python-scripts off",
            "-ex", "thread apply all bt"]


def parse_gdb_bt(text):
    """{lwp: [(name, address or None)]} from `thread apply all bt`.  gdb
    prints the address on the innermost of the frames of one pc (inlined
    calls, then their function): the others get it here too."""
    out = {}
    lwp = None
    for line in text.splitlines():
        m = GDB_THREAD.match(line)
        if m:
            lwp = int(m.group(1))
            out[lwp] = []
            continue
        m = GDB_FRAME.match(line)
        if m and lwp is not None:
            addr = int(m.group(2), 16) if m.group(2) else None
            if addr is None and out[lwp]:
                addr = out[lwp][-1][1]
            out[lwp].append((m.group(3), addr))
    return out


def gdb_backtraces(pid):
    """({lwp: [(name, address or None)]}, None) or (None, why)."""
    try:
        res = T.run(GDB_ARGV[:1] + ["-p", str(pid)] + GDB_ARGV[1:],
                    timeout=120)
    except OSError as e:
        return None, "cannot run gdb: %s" % e
    out = parse_gdb_bt(res.out)
    if not out:
        return None, "gdb printed no backtrace (rc %s): %s" % (
            res.rc, (res.err or res.out).strip()[-300:])
    return out, None


def gdb_agrees(ours, theirs):
    """Whether every (name, address) of ours is a frame of theirs, in
    order: same address and normalised name; else (a symbol gdb calls
    otherwise) the same address; else (gdb printed no address) the same
    name.  Returns (index in ours of the first that is not, or None; how
    many matched by address only)."""
    j = by_addr = 0
    for i, (name, addr) in enumerate(ours):
        addr = int(addr, 16) if addr else None
        rest = list(enumerate(theirs))[j:]
        same = [k for k, (n, a) in rest if a == addr and norm(n) == norm(name)]
        near = [k for k, (n, a) in rest if addr is not None and a == addr]
        named = [k for k, (n, a) in rest if norm(n) == norm(name)]
        if same:
            j = same[0] + 1
        elif near:
            j = near[0] + 1
            by_addr += 1
        elif named:
            j = named[0] + 1
        else:
            return i, by_addr
    return None, by_addr


def check_gdb(chk, pid, doc):
    bts, why = gdb_backtraces(pid)
    if bts is None:
        T.log("  SKIP gdb comparison: %s" % why)
        return
    for t in doc.get("threads") or []:
        lwp = t.get("native_thread_id")
        ours = [(f.get("function"), f.get("address"))
                for f in t.get("frames") or []
                if f.get("native") and not f.get("inlined")
                and f.get("function")]
        theirs = bts.get(lwp)
        if not chk.ok(theirs is not None, "gdb: LWP %s has a backtrace"
                      % lwp):
            continue
        bad, by_addr = gdb_agrees(ours, theirs)
        chk.ok(bad is None, "gdb: LWP %s: pyxray's %d native functions "
               "appear in gdb's backtrace, in order%s" % (
                   lwp, len(ours), " (%d by address only)" % by_addr
                   if by_addr else ""),
               "      first not found: %s\n      pyxray: %s\n      gdb: %s"
               % (ours[bad] if bad is not None else None,
                  [n for n, _ in ours], [n for n, _ in theirs]))
        if by_addr:
            T.log("       (gdb names %d of them otherwise: same address)"
                  % by_addr)


# --------------------------------------------------------------------------
# killed while holding the target

def all_stopped(pid):
    states = T.thread_states(pid)
    return states and all(st in ("t", "T") for st, _ in states.values())


def check_kill(chk, args, fx, sig):
    name = signal.Signals(sig).name
    p = T.spawn([args.pyxray, "stacks", str(fx.pid), "--native", "--json",
                 "--hold-ms", str(HOLD_MS)], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not all_stopped(fx.pid) and p.poll() is None and \
                time.monotonic() < deadline:
            time.sleep(0.002)
        if not chk.ok(all_stopped(fx.pid), "%s: the target is stopped while "
                      "pyxray --native holds it" % name,
                      "      pyxray rc %s" % p.poll()):
            return
        time.sleep(0.05)
        os.kill(p.pid, sig)
        left = T.wait_all_running(fx.pid, 1.0)
        chk.ok(not left, "%s: no target thread in t/T within 1 s" % name,
               "      stopped: %s" % left)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            pass
        chk.ok(fx.alive() and T.tracer_pid(fx.pid) == 0,
               "%s: the target is alive and not traced" % name)
    finally:
        T.kill_child(p)


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    version = T.check_target_python(args.python)
    chk = T.Checker("native %s (%s)" % (args.python, version))
    fx = NativeFixture(args.python)
    try:
        truth = fx.truth
        libc_unnamed, why = libc_without_debug_file(fx.spec)
        if libc_unnamed:
            T.log("  note: %s, so its internal functions (futex waits, "
                  "cancellable syscalls) are unnamed: unnamed innermost libc "
                  "frames are accepted for them (the Python/C merge is still "
                  "checked)" % why)
        T.log("target pid %d, %d Python threads and a C thread, python %s"
              % (fx.pid, len(truth["threads"]), version))

        plain, _ = run_json(chk, args, fx.pid)
        doc, res = run_json(chk, args, fx.pid, "--native")
        if plain is None or doc is None:
            return chk.finish()
        T.log("  (--native: wall %.1f ms, pause_ms %.3f; without: pause_ms "
              "%.3f)" % (res.wall * 1000, doc.get("pause_ms"),
                         plain.get("pause_ms")))
        if args.verbose:
            T.log(json.dumps(doc, indent=1))

        # 1. without --native, the JSON has no trace of it
        extra = [k for k in ("native", "python", "native_error")
                 if k in plain or any(k in t for t in plain["threads"])]
        chk.ok(not extra and all("native" not in f for t in plain["threads"]
                                 for f in t["frames"]),
               "JSON without --native has no native keys", "      %s" % extra)

        # 2. the merged stacks
        check_schema(chk, doc)
        key = truth_key(fx.spec)
        if key != "native_thread_id":
            T.log("  (in a PID namespace: the truth's TIDs are pyxray's %s)"
                  % key)
        got, base = by_native_id(doc, key), by_native_id(plain, key)
        for tt in truth["threads"]:
            t = got.get(tt["native_thread_id"])
            p = base.get(tt["native_thread_id"])
            if chk.ok(t is not None and p is not None, "thread %s (%d) in "
                      "both outputs" % (tt["role"], tt["native_thread_id"])):
                check_thread(chk, tt, t, p, libc_unnamed)
        check_helper(chk, truth, got.get(truth["helper"]["native_thread_id"]),
                     libc_unnamed)
        tids = set(T.thread_states(fx.pid))
        host = by_native_id(doc)
        chk.ok(tids == set(host), "--native shows every thread of the "
               "process", "      /proc: %s\n      pyxray: %s" % (
                   sorted(tids), sorted(host)))

        # 3. text output
        res = T.pyxray(args.pyxray, "stacks", fx.pid, "--native")
        if chk.ok(res.rc == 0, "stacks --native (text) exits 0",
                  "      " + res.describe()):
            for word in ("c-helper", "sleeper_inner", "no Python thread "
                         "state", "(libc.so"):
                chk.ok(word in res.out, "text output shows %r" % word)
            if args.verbose:
                T.log(res.out)

        # 4. --nonblocking cannot unwind
        res = T.pyxray(args.pyxray, "stacks", fx.pid, "--native",
                       "--nonblocking")
        chk.ok(res.rc == T.EXIT["USAGE"] and T.one_line_stderr(res) is None
               and "nonblocking" in res.err,
               "--native --nonblocking: exit 2, one line naming "
               "--nonblocking", "      " + res.describe())

        # 5. gdb, on the same idle target
        left = T.wait_all_running(fx.pid, 1.0)
        chk.ok(not left, "target running before gdb", "      %s" % left)
        check_gdb(chk, fx.pid, doc)

        # 6. killed while holding the target for --native
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if T.wait_all_running(fx.pid, 2.0):
                chk.fail("target running before the %s case" % sig)
                break
            check_kill(chk, args, fx, sig)

        left = T.wait_all_running(fx.pid, 1.0)
        chk.ok(not left, "at the end no thread of the target is in t/T",
               "      %s" % left)
        chk.ok(fx.alive(), "the target is still alive")
    finally:
        fx.stop()
    return chk.finish()


if __name__ == "__main__":
    sys.exit(main())
