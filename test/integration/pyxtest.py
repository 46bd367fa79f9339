"""Shared helpers for the pyxray integration tests (stdlib only).

Every test script takes --pyxray BIN --python PY and exits 0 (pass),
1 (fail) or 77 (skip, with a "SKIP: ..." line saying why).

Children (fixtures, pyxray, helpers) are started in their own process group
with PR_SET_PDEATHSIG=SIGKILL and are always killed and reaped: on normal
exit (try/finally in the scripts, atexit here) and on SIGINT/SIGTERM/SIGHUP.
"""

import argparse
import atexit
import ctypes
import ctypes.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

PASS, FAIL, SKIP = 0, 1, 77
SUPPORTED = ((3, 8), (3, 13))

SOURCE_DIR = os.path.abspath(os.environ.get("PYX_SOURCE_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIXTURES = os.path.join(SOURCE_DIR, "fixtures")
STACKS_TARGET = os.path.join(FIXTURES, "stacks_target.py")

# Exit codes, from include/pyxray/error.h.
EXIT = {
    "OK": 0, "USAGE": 2, "NO_PROCESS": 3, "PERMISSION": 4, "NOT_PYTHON": 5,
    "UNSUPPORTED_VERSION": 6, "NO_DEBUG_INFO": 7, "EXITED": 8,
    "BAD_MEMORY": 9, "TIMEOUT": 10, "INTERRUPTED": 11, "LAYOUT": 14,
    "BUSY": 15,
}

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6",
                    use_errno=True)


def log(*args):
    print(*args, flush=True)


# --------------------------------------------------------------------------
# child process bookkeeping

_children = []  # Popen objects, each leading its own process group
_tmpdirs = []


def _child_setup():
    # Runs in the child between fork and exec.
    os.setpgid(0, 0)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def spawn(argv, **kw):
    """Popen in its own process group, killed when we die; registered for
    cleanup."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    p = subprocess.Popen(argv, preexec_fn=_child_setup, **kw)
    _children.append(p)
    return p


def kill_child(p, sig=signal.SIGKILL):
    """Kill p's whole process group (SIGKILL also ends stopped or traced
    processes) and reap p."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            os.kill(p.pid, sig)
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        log("WARNING: child %d did not die" % p.pid)
    for f in (p.stdout, p.stderr):
        if f is not None:
            f.close()
    if p in _children:
        _children.remove(p)


def cleanup():
    for p in list(_children):
        kill_child(p)
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)
    del _tmpdirs[:]


def _on_signal(signum, frame):
    cleanup()
    log("killed by signal %d" % signum)
    os._exit(128 + signum)


atexit.register(cleanup)
for _s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(_s, _on_signal)


def tmpdir():
    d = tempfile.mkdtemp(prefix="pyxtest-")
    os.chmod(d, 0o755)
    _tmpdirs.append(d)
    return d


# --------------------------------------------------------------------------
# arguments, versions, skips

def parse_args(description, extra=None):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--pyxray", required=True, help="the pyxray binary")
    ap.add_argument("--python", required=True, help="the target Python")
    ap.add_argument("-v", "--verbose", action="store_true")
    if extra:
        extra(ap)
    args = ap.parse_args()
    args.pyxray = os.path.abspath(args.pyxray)
    return args


def require_pyxray(path):
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        log("FAIL: pyxray binary %s does not exist or is not executable"
            % path)
        sys.exit(FAIL)


def version_from_name(py):
    m = re.search(r"python(\d)\.(\d+)$", os.path.basename(py))
    return (int(m.group(1)), int(m.group(2))) if m else None


def python_version(py):
    """'3.11.7' by running the interpreter; fails the test if it won't run."""
    try:
        out = subprocess.run(
            [py, "-c", "import platform;print(platform.python_version())"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            universal_newlines=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        log("FAIL: cannot run %s: %s" % (py, e))
        sys.exit(FAIL)
    if out.returncode != 0:
        log("FAIL: %s exited %d: %s" % (py, out.returncode, out.stderr))
        sys.exit(FAIL)
    return out.stdout.strip()


def vtuple(version):
    return tuple(int(x) for x in re.findall(r"\d+", version)[:2])


def interpreter_binary(py):
    """The ELF file holding the interpreter: the libpython the executable
    links (ldd), else the executable itself."""
    exe = os.path.realpath(py)
    out = subprocess.run(["ldd", exe], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True)
    for line in out.stdout.splitlines():
        m = re.match(r"\s*(libpython\S*)\s*=>\s*(\S+)", line)
        if m and os.path.exists(m.group(2)):
            return os.path.realpath(m.group(2))
    return exe


def _has_debug_info(path):
    out = subprocess.run(["readelf", "-S", "-W", path],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         universal_newlines=True)
    return re.search(r"\s\.debug_info\s", out.stdout) is not None


def has_dwarf(py):
    """(bool, what was checked).  Also accepts a separate debug file found by
    build ID under /usr/lib/debug/.build-id (what python3-dbg installs)."""
    binary = interpreter_binary(py)
    if _has_debug_info(binary):
        return True, binary
    notes = subprocess.run(["readelf", "-n", binary], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, universal_newlines=True)
    m = re.search(r"Build ID:\s*([0-9a-f]+)", notes.stdout)
    if m:
        bid = m.group(1)
        dbg = "/usr/lib/debug/.build-id/%s/%s.debug" % (bid[:2], bid[2:])
        if os.path.exists(dbg) and _has_debug_info(dbg):
            return True, dbg
    return False, binary


def skip(py, version, reason):
    log("SKIP: %s (%s): %s" % (py, version, reason))
    sys.exit(SKIP)


def check_target_python(py):
    """Exit 77 for a Python pyxray does not support; return its version.
    Stripped Pythons are tested too: pyxray reads them through its built-in
    layout tables (the log says which way each Python is read)."""
    byname = version_from_name(py)
    if byname is not None and not (SUPPORTED[0] <= byname <= SUPPORTED[1]):
        skip(py, "%d.%d" % byname,
             "unsupported version (pyxray supports 3.8-3.13)")
    version = python_version(py)
    if not (SUPPORTED[0] <= vtuple(version) <= SUPPORTED[1]):
        skip(py, version, "unsupported version (pyxray supports 3.8-3.13)")
    ok, what = has_dwarf(py)
    log("%s (%s): %s" % (py, version, "DWARF in %s" % what if ok else
                         "stripped (%s): built-in layout table" % what))
    return version


def find_dwarf_python(preferred=("3.11", "3.12", "3.10", "3.13", "3.9",
                                 "3.8")):
    """A supported Python with DWARF, for version-independent tests."""
    env = os.environ.get("PYX_TARGET_PYTHON")
    if env:
        return env
    base = "/root/.pyenv/versions"
    cands = []
    if os.path.isdir(base):
        for d in sorted(os.listdir(base)):
            m = re.match(r"(\d+\.\d+)\.\d+$", d)
            if m:
                cands.append((m.group(1),
                              os.path.join(base, d, "bin", "python" + m.group(1))))
    cands.sort(key=lambda c: preferred.index(c[0]) if c[0] in preferred else 99)
    for short, py in cands:
        if short in preferred and os.path.exists(py) and has_dwarf(py)[0]:
            return py
    return None


# --------------------------------------------------------------------------
# the fixture

class Fixture(object):
    """stacks_target.py under a given Python; .truth is its truth JSON."""

    def __init__(self, python, threads=4, gap_file=None, lifetime=300,
                 preexec_user=None, timeout=20):
        self.dir = tmpdir()
        self.truth_path = os.path.join(self.dir, "truth.json")
        self.log_path = os.path.join(self.dir, "fixture.log")
        argv = [python, STACKS_TARGET, self.truth_path, "--threads",
                str(threads), "--lifetime", str(lifetime)]
        if gap_file:
            argv += ["--gap-file", gap_file]
        self.logf = open(self.log_path, "w")
        self.proc = spawn(argv, stdout=self.logf, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.truth_path):
            if self.proc.poll() is not None:
                raise RuntimeError("fixture exited %s before its truth: %s"
                                   % (self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                raise RuntimeError("fixture wrote no truth in %d s: %s"
                                   % (timeout, self.log()))
            time.sleep(0.05)
        with open(self.truth_path) as f:
            self.truth = json.load(f)
        if self.truth["pid"] != self.pid:
            raise RuntimeError("truth pid %s != child pid %d"
                               % (self.truth["pid"], self.pid))

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def thread(self, role=None, name=None):
        for t in self.truth["threads"]:
            if (role is None or t["role"] == role) and \
                    (name is None or t["name"] == name):
                return t
        return None

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        kill_child(self.proc)
        self.logf.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# --------------------------------------------------------------------------
# running pyxray

class Result(object):
    def __init__(self, argv, rc, out, err, wall):
        self.argv, self.rc, self.out, self.err, self.wall = \
            argv, rc, out, err, wall

    def describe(self):
        return "%s -> rc %s in %.0f ms\n  stdout: %s\n  stderr: %s" % (
            " ".join(self.argv), self.rc, self.wall * 1000,
            self.out[:2000].rstrip() or "(empty)",
            self.err[:2000].rstrip() or "(empty)")

    def json(self):
        return json.loads(self.out)


def run(argv, timeout=30, preexec=None):
    """Run a command to completion with a timeout; its own process group,
    killed (group-wide) on timeout.  Returns a Result; rc is None on
    timeout and negative for death by signal."""
    t0 = time.monotonic()
    p = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        kill_child(p)
        out, err, rc = b"", b"(timed out after %d s)" % timeout, None
    wall = time.monotonic() - t0
    if p in _children:
        _children.remove(p)
        for f in (p.stdout, p.stderr):
            if f is not None:
                f.close()
    return Result(argv, rc, out.decode("utf-8", "replace"),
                  err.decode("utf-8", "replace"), wall)


def pyxray(binary, *args, **kw):
    return run([binary] + [str(a) for a in args], **kw)


# --------------------------------------------------------------------------
# /proc

def _stat_fields(path):
    with open(path) as f:
        s = f.read()
    # comm may hold spaces and parentheses: split after the last ')'.
    return s[s.rindex(")") + 2:].split()


def thread_states(pid):
    """{tid: (state letter, utime ticks)} for every thread of pid; {} if the
    process is gone."""
    out = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except FileNotFoundError:
        return out
    for tid in tids:
        try:
            f = _stat_fields("/proc/%d/task/%s/stat" % (pid, tid))
        except (FileNotFoundError, ProcessLookupError):
            continue
        # fields after comm: state(3) ... utime(14) -> index 0 and 11
        out[int(tid)] = (f[0], int(f[11]))
    return out


def stopped_threads(pid):
    return sorted(t for t, (st, _) in thread_states(pid).items()
                  if st in ("t", "T"))


def tracer_pid(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    return 0


def wait_all_running(pid, timeout=1.0):
    """Wait until no thread of pid is in t/T; returns the stopped tids left
    (empty list = fine)."""
    deadline = time.monotonic() + timeout
    while True:
        left = stopped_threads(pid)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.01)


def utime(pid, tid):
    return thread_states(pid).get(tid, (None, None))[1]


def one_line_stderr(res):
    """None if stderr is exactly one non-empty line, else a complaint."""
    lines = res.err.splitlines()
    if len(lines) != 1 or not lines[0].strip():
        return "stderr should be exactly one non-empty line, got %d: %r" % (
            len(lines), res.err[:500])
    return None


def free_pid():
    """A PID no process uses right now."""
    with open("/proc/sys/kernel/pid_max") as f:
        pid_max = int(f.read())
    for pid in range(pid_max - 1, 300, -1):
        if not os.path.exists("/proc/%d" % pid):
            return pid
    raise RuntimeError("no free pid")


class Checker(object):
    """Collects failures; a test fails when any check fails."""

    def __init__(self, label):
        self.label = label
        self.failures = []

    def ok(self, cond, what, detail=""):
        if cond:
            log("  ok   %s" % what)
        else:
            log("  FAIL %s%s" % (what, ("\n" + detail) if detail else ""))
            self.failures.append(what)
        return cond

    def fail(self, what, detail=""):
        return self.ok(False, what, detail)

    def finish(self):
        if self.failures:
            log("FAIL: %s: %d check(s) failed:" % (self.label,
                                                   len(self.failures)))
            for f in self.failures:
                log("  - " + f)
            return FAIL
        log("PASS: %s" % self.label)
        return PASS
