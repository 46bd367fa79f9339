"""Shared helpers for the pyxray integration tests (stdlib only).

Every test script takes --pyxray BIN --python PY and exits 0 (pass),
1 (fail) or 77 (skip, with a "SKIP: ..." line saying why).

PY is a path to an interpreter, or a test bed spec
"root:DIR:NAME:MODE" (docs/test-bed.md): interpreter NAME of the Debian
root DIR made by scripts/mkroot.sh, run in MODE "container" (new mount and
PID namespaces, chrooted to DIR) or "hostld" (on the host through DIR's own
dynamic loader, no debug file anywhere).  spawn() and run() launch a spec
given as argv[0] the right way, so tests that start their fixture with
spawn([python, FIXTURE, ...]) work unchanged; Spec says what the host sees.

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
import threading
import time

PASS, FAIL, SKIP = 0, 1, 77
SUPPORTED = ((3, 8), (3, 15))

SOURCE_DIR = os.path.abspath(os.environ.get("PYX_SOURCE_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIXTURES = os.path.join(SOURCE_DIR, "fixtures")
STACKS_TARGET = os.path.join(FIXTURES, "stacks_target.py")

# Exit codes, from include/pyxray/error.h.
EXIT = {
    "OK": 0, "USAGE": 2, "NO_PROCESS": 3, "PERMISSION": 4, "NOT_PYTHON": 5,
    "UNSUPPORTED_VERSION": 6, "NO_DEBUG_INFO": 7, "EXITED": 8,
    "BAD_MEMORY": 9, "TIMEOUT": 10, "INTERRUPTED": 11, "NOMEM": 12,
    "IO": 13, "LAYOUT": 14, "BUSY": 15, "FORMAT": 16, "NOT_SUPPORTED": 17,
    "GC_BUSY": 18, "FILE_MISMATCH": 19,
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
_TMP_BASE = None  # "/tmp" once a root spec is in use


def _child_setup():
    # Runs in the child between fork and exec.
    os.setpgid(0, 0)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def spawn(argv, **kw):
    """Popen in its own process group, killed when we die; registered for
    cleanup.  argv[0] may be a test bed spec (a Spec or "root:..."): the
    interpreter is then started in its mode, and p.pid is its PID as the
    host sees it."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    spec = _spec_of(argv[0]) if argv else None
    if spec is not None and spec.kind == "root":
        return spec.popen(list(argv[1:]), **kw)
    if spec is not None:  # a host Spec: its path
        argv = [spec.path] + list(argv[1:])
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
    # Last: the init of a PID namespace waits, as it dies, until every
    # process of its namespace is reaped, ours included.
    for ns in list(_pidns):
        kill_child(ns.holder)
        for fd in (ns.fd, ns.own):
            os.close(fd)
    del _pidns[:]
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
    # /tmp is what a container-mode target shares with the host.
    d = tempfile.mkdtemp(prefix="pyxtest-", dir=_TMP_BASE)
    os.chmod(d, 0o755)
    _tmpdirs.append(d)
    return d


# --------------------------------------------------------------------------
# test bed specs: "root:DIR:NAME:MODE" (docs/test-bed.md)

ROOT_MODES = ("container", "hostld")
ROOT_FIXTURES = "/pyxray-fixtures"  # where the container sees FIXTURES
ROOT_STAMP = ".pyxray-stamp"        # written last by scripts/mkroot.sh
ROOT_BUILDS = "pyxray-builds.json"  # the build table mkroot.sh records

_CLONE_NEWNS = 0x00020000
_CLONE_NEWPID = 0x20000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 32, 4096, 16384, 1 << 18
_PYTHON_ENV = ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONUSERBASE",
               "PYTHONSAFEPATH", "PYTHONNOUSERSITE")


class Spec(object):
    """How to run one target Python.

    A plain path (kind "host") is the interpreter itself.  "root:DIR:NAME:
    MODE" (kind "root") is /usr/bin/NAME of the test bed root DIR:
      container  new mount and PID namespaces, chrooted to DIR; FIXTURES is
                 bind-mounted read-only at /pyxray-fixtures and the host's
                 /tmp at /tmp (truth files land where the host reads them);
                 the target's debug files are those of DIR;
      hostld     on the host through DIR's own dynamic loader with
                 PYTHONHOME=DIR/usr: no debug file is at any path pyxray
                 searches (unless the binary embeds its DWARF: NAMEd).
    Popen.pid is always the host's PID of the interpreter itself."""

    def __init__(self, text):
        self.text = str(text)
        self.kind = "host"
        self.root = self.name = self.mode = None
        self.path = self.text  # the interpreter as the host sees it
        if self.text.startswith("root:"):
            parts = self.text[len("root:"):].rsplit(":", 2)
            if len(parts) != 3 or parts[2] not in ROOT_MODES or \
                    not parts[0].startswith("/") or "/" in parts[1]:
                raise ValueError("bad test bed spec %r (want root:DIR:NAME:"
                                 "container|hostld)" % self.text)
            self.kind = "root"
            self.root, self.name, self.mode = parts
            self.root = os.path.normpath(self.root)
            self.path = os.path.join(self.root, "usr/bin", self.name)

    def __str__(self):
        return self.text

    def label(self):
        if self.kind != "root":
            return self.text
        return "%s (root %s, %s)" % (self.name, os.path.basename(self.root),
                                     self.mode)

    def target_root(self):
        """The target's / as the host sees it."""
        if self.kind == "root" and self.mode == "container":
            return self.root
        return "/"

    def root_problem(self):
        """None if the root is complete and has the interpreter, else why
        not (for a named skip)."""
        if self.kind != "root":
            return None
        if not os.path.exists(os.path.join(self.root, ROOT_STAMP)):
            why = None
            try:
                with open(self.root + ".failed") as f:
                    why = f.read().strip()
            except OSError:
                pass
            if why:
                return why
            if os.path.isdir(self.root):
                return "%s is incomplete (no %s; run scripts/mkroot.sh)" % (
                    self.root, ROOT_STAMP)
            return "%s does not exist (run scripts/mkroot.sh)" % self.root
        if not os.path.isfile(self.path):
            return "%s has no /usr/bin/%s" % (self.root, self.name)
        return None

    def inside(self, path):
        """path (the host's view) as the target sees it."""
        if self.kind != "root" or self.mode != "container" or \
                not isinstance(path, str):
            return path
        for host, there in ((FIXTURES, ROOT_FIXTURES), (self.root, "/")):
            if path == host or path.startswith(host + "/"):
                return os.path.normpath(there + path[len(host):])
        return path

    def outside(self, path):
        """path as the target sees it (a co_filename, a truth file's
        block_file) as the host sees it: the inverse of inside()."""
        if self.kind != "root" or self.mode != "container" or \
                not isinstance(path, str) or not path.startswith("/"):
            return path
        if path == ROOT_FIXTURES or path.startswith(ROOT_FIXTURES + "/"):
            return os.path.normpath(FIXTURES + path[len(ROOT_FIXTURES):])
        return os.path.normpath(self.root + path)

    def in_pid_namespace(self):
        """Whether the target has PIDs of its own (container mode): its
        truth's native_thread_id is then pyxray's ns_native_thread_id."""
        return self.kind == "root" and self.mode == "container"

    def argv(self, args=()):
        """The command line that starts the interpreter with args (fixture
        paths translated), without the namespace setup popen() does."""
        if self.kind != "root":
            return [self.path] + list(args)
        if self.mode == "container":
            return ["/usr/bin/" + self.name] + [self.inside(a) for a in args]
        libs = "%s/usr/lib/x86_64-linux-gnu:%s/lib/x86_64-linux-gnu" % (
            self.root, self.root)
        return [os.path.join(self.root, "lib64/ld-linux-x86-64.so.2"),
                "--library-path", libs, self.path] + list(args)

    def env(self, env=None):
        env = dict(os.environ if env is None else env)
        if self.kind != "root":
            return env
        for k in _PYTHON_ENV:
            env.pop(k, None)
        if self.mode == "hostld":
            env["PYTHONHOME"] = os.path.join(self.root, "usr")
        return env

    def interpreter_binary(self):
        """The ELF file holding the interpreter (host's view): libpython if
        the executable links it, else the executable."""
        if self.kind != "root":
            return interpreter_binary(self.path)
        exe = os.path.realpath(self.path)
        out = subprocess.run(["readelf", "-d", exe], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, universal_newlines=True)
        m = re.search(r"NEEDED.*\[(libpython[^\]]*)\]", out.stdout)
        if m:
            for d in ("usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu"):
                lib = os.path.join(self.root, d, m.group(1))
                if os.path.exists(lib):
                    return os.path.realpath(lib)
        return exe

    def recorded(self):
        """This interpreter's row of the root's build table, or None."""
        try:
            with open(os.path.join(self.root, ROOT_BUILDS)) as f:
                rows = json.load(f)["rows"]
        except (OSError, ValueError, KeyError):
            return None
        for r in rows:
            if r.get("name") == self.name:
                return r
        return None

    def popen(self, args, **kw):
        """Start the interpreter with args; registered like spawn()."""
        if self.kind != "root":
            return spawn([self.path] + list(args), **kw)
        global _TMP_BASE
        _TMP_BASE = "/tmp"
        kw["env"] = self.env(kw.get("env"))
        if self.mode == "hostld":
            return spawn(self.argv(args), **kw)
        cwd = kw.pop("cwd", None)
        inside_cwd = self.inside(cwd) if cwd else "/"
        setup = _container_setup(self.root, inside_cwd)
        ns = _pid_namespace()
        with _ns_lock:
            _setns(ns.fd, _CLONE_NEWPID)
            try:
                p = subprocess.Popen(self.argv(args), preexec_fn=setup, **kw)
            finally:
                _setns(ns.own, _CLONE_NEWPID)
        _children.append(p)
        return p


def _spec_of(py):
    """A Spec for a "root:..." string or a Spec, else None (plain paths go
    the old way, untouched)."""
    if isinstance(py, Spec):
        spec = py
    elif isinstance(py, str) and py.startswith("root:"):
        spec = Spec(py)
    else:
        return None
    if spec.kind == "root":
        global _TMP_BASE
        _TMP_BASE = "/tmp"
    return spec


def spec(py):
    """The Spec of a --python argument (a plain path gives kind "host")."""
    return _spec_of(py) or Spec(py)


def _setns(fd, nstype):
    if _libc.setns(fd, nstype) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "setns: %s" % os.strerror(e))


class _PidNs(object):
    def __init__(self, holder, fd, own):
        self.holder, self.fd, self.own = holder, fd, own


_pidns = []
_ns_lock = threading.Lock()


def _pid_namespace():
    """This process's PID namespace for container-mode targets, made on
    first use: its init is a `sleep` we start (the namespace lives as long
    as it does: cleanup() kills it with SIGKILL, which also ends every
    process left in the namespace).  Targets are then forked straight into
    it (setns on pid_for_children), so they are our children with their
    host PID in Popen.pid, and their own PID inside."""
    if _pidns and _pidns[0].holder.poll() is None:
        return _pidns[0]
    for ns in _pidns:
        for fd in (ns.fd, ns.own):
            os.close(fd)
    del _pidns[:]
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    with _ns_lock:
        if _libc.unshare(_CLONE_NEWPID) != 0:
            e = ctypes.get_errno()
            os.close(own)
            raise OSError(e, "unshare(CLONE_NEWPID): %s (root needed)"
                          % os.strerror(e))
        try:
            holder = subprocess.Popen(["sleep", "infinity"],
                                      stdin=subprocess.DEVNULL,
                                      preexec_fn=_child_setup)
        finally:
            _setns(own, _CLONE_NEWPID)
    fd = os.open("/proc/%d/ns/pid" % holder.pid, os.O_RDONLY | os.O_CLOEXEC)
    _pidns.append(_PidNs(holder, fd, own))
    return _pidns[0]


def _container_setup(root, cwd):
    """preexec_fn of a container-mode target: runs in the child, already in
    the PID namespace, before exec."""
    def mount(src, dst, fstype, flags):
        if _libc.mount(src and src.encode(), dst.encode(),
                       fstype and fstype.encode(), flags, None) != 0:
            e = ctypes.get_errno()
            msg = "mount %s on %s: %s" % (src, dst, os.strerror(e))
            os.write(2, ("pyxtest container setup: %s\n" % msg).encode())
            raise OSError(e, msg)

    def setup():
        _child_setup()
        if _libc.unshare(_CLONE_NEWNS) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
        # Nothing we mount here may show on the host.
        mount(None, "/", None, _MS_REC | _MS_PRIVATE)
        fx = os.path.join(root, ROOT_FIXTURES.lstrip("/"))
        mount(FIXTURES, fx, None, _MS_BIND | _MS_REC)
        mount(None, fx, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY)
        mount("/tmp", os.path.join(root, "tmp"), None, _MS_BIND | _MS_REC)
        mount("/dev", os.path.join(root, "dev"), None, _MS_BIND | _MS_REC)
        mount("proc", os.path.join(root, "proc"), "proc",
              _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
        os.chroot(root)
        os.chdir(cwd)
    return setup


def ns_pid(pid):
    """pid as the process itself sees it (its innermost PID namespace);
    pid itself for a process in ours, or if it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError):
        pass
    return pid


def host_tid(pid, tid):
    """The host's TID of the thread of pid whose TID in its own (innermost)
    PID namespace is tid (what its truth says); tid itself when no thread
    says so (a process in our namespace)."""
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return tid
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/status" % (pid, t)) as f:
                for line in f:
                    if line.startswith("NSpid:"):
                        if int(line.split()[-1]) == tid:
                            return int(t)
                        break
        except (OSError, ValueError):
            continue
    return tid


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
    _spec_of(args.python)  # a root spec moves tmpdir() to /tmp
    return args


def require_pyxray(path):
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        log("FAIL: pyxray binary %s does not exist or is not executable"
            % path)
        sys.exit(FAIL)


def version_from_name(py):
    spec = _spec_of(py)
    if spec is not None and spec.kind == "root":
        m = re.match(r"python(\d)\.(\d+)d?$", spec.name)
    else:
        m = re.search(r"python(\d)\.(\d+)$", os.path.basename(py))
    return (int(m.group(1)), int(m.group(2))) if m else None


def python_version(py):
    """'3.11.7' by running the interpreter; fails the test if it won't run."""
    spec = _spec_of(py)
    if spec is not None and spec.kind == "root":
        problem = spec.root_problem()
        if problem:
            skip(py, None, "no test root: " + problem)
        try:
            res = run([spec, "-c",
                       "import platform;print(platform.python_version())"])
        except (OSError, subprocess.SubprocessError) as e:
            log("FAIL: cannot run %s: %s" % (spec.label(), e))
            sys.exit(FAIL)
        if res.rc != 0 or not res.out.strip():
            log("FAIL: %s exited %s: %s" % (spec.label(), res.rc, res.err))
            sys.exit(FAIL)
        return res.out.strip()
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
    links (ldd), else the executable itself.  For a spec: its path as the
    host sees it."""
    spec = _spec_of(py)
    if spec is not None and spec.kind == "root":
        return spec.interpreter_binary()
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
    build ID under /usr/lib/debug/.build-id (what python3-dbg installs).
    For a spec, that directory is looked up in the target's root: the test
    bed root in container mode, the host's in hostld mode."""
    binary = interpreter_binary(py)
    if _has_debug_info(binary):
        return True, binary
    bid = build_id(binary)
    if bid:
        spec = _spec_of(py)
        top = spec.target_root() if spec is not None else "/"
        dbg = os.path.join(top, "usr/lib/debug/.build-id/%s/%s.debug"
                           % (bid[:2], bid[2:]))
        if os.path.exists(dbg) and _has_debug_info(dbg):
            return True, dbg
    return False, binary


def build_id(path):
    """The GNU build-id of an ELF file (hex), or None."""
    notes = subprocess.run(["readelf", "-n", path], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, universal_newlines=True)
    m = re.search(r"Build ID:\s*([0-9a-f]+)", notes.stdout)
    return m.group(1) if m else None


def skip(py, version, reason):
    spec = _spec_of(py)
    if spec is not None and spec.kind == "root":
        # "SKIP: python3.14 3.14.10 (root sid, container): reason"
        log("SKIP: %s%s (root %s, %s): %s" % (
            spec.name, " " + version if version else "",
            os.path.basename(spec.root), spec.mode, reason))
    else:
        log("SKIP: %s (%s): %s" % (py, version, reason))
    sys.exit(SKIP)


def check_target_python(py):
    """Exit 77 for a Python pyxray does not support; return its version.
    Stripped Pythons are tested too: pyxray reads them through its built-in
    layout tables (the log says which way each Python is read)."""
    spec = _spec_of(py)
    if spec is not None and spec.kind == "root":
        problem = spec.root_problem()
        if problem:
            skip(py, None, "no test root: " + problem)
    byname = version_from_name(py)
    if byname is not None and not supported(byname) and spec is None:
        skip(py, "%d.%d" % byname, UNSUPPORTED)
    version = python_version(py)
    if not supported(vtuple(version)):
        skip(py, version, UNSUPPORTED)
    ok, what = has_dwarf(py)
    log("%s (%s): %s" % (py, version, "DWARF in %s" % what if ok else
                         "stripped (%s): built-in layout table" % what))
    return version


UNSUPPORTED = "unsupported version (pyxray supports %d.%d-%d.%d)" % (
    SUPPORTED[0] + SUPPORTED[1])


def supported(vt):
    """Whether pyxray supports version tuple vt.  PYX_TEST_ANY_VERSION=1
    says yes to all (to run the suite on a version being added)."""
    if os.environ.get("PYX_TEST_ANY_VERSION") == "1":
        return True
    return SUPPORTED[0] <= tuple(vt)[:2] <= SUPPORTED[1]


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

def start_fixture(argv, truth_path, timeout=60, name="fixture"):
    """Spawn argv: a fixture that writes its truth to truth_path, then
    idles.  (process, log file, truth); the log is truth_path + ".log".
    A fixture that exits first, or writes nothing in timeout seconds, is
    killed, and RuntimeError says so with its log."""
    log_path = truth_path + ".log"
    logf = open(log_path, "w")
    p = spawn(argv, stdout=logf, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while not os.path.exists(truth_path):
        if p.poll() is not None or time.monotonic() > deadline:
            logf.close()
            kill_child(p)
            with open(log_path) as f:
                raise RuntimeError("%s %s: %s" % (
                    name, "exited %s" % p.returncode
                    if p.returncode is not None and p.returncode >= 0
                    else "wrote no truth in %d s" % timeout, f.read()))
        time.sleep(0.05)
    with open(truth_path) as f:
        return p, logf, json.load(f)


class Fixture(object):
    """stacks_target.py under a given Python; .truth is its truth JSON."""

    def __init__(self, python, threads=4, gap_file=None, lifetime=300,
                 preexec_user=None, timeout=20):
        self.spec = spec(python)
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
        # A container-mode target knows itself by its namespace's PID.
        if self.truth["pid"] != ns_pid(self.pid):
            raise RuntimeError("truth pid %s != child pid %d (%s inside)"
                               % (self.truth["pid"], self.pid,
                                  ns_pid(self.pid)))

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


def run_shares(binary, jobs, *args, timeout=120):
    """pyxray ARGS --jobs JOBS, the graph's shares (jobs > 1) run one after
    the other, the highest first (PYX_TEST_SHARES_BACKWARD, a test build's
    hook): every object two shares meet is then taken from the higher one,
    the steals that threads make by chance.  For tests that compare the
    answer on one thread and on several."""
    env = dict(os.environ)
    os.environ["PYX_TEST_SHARES_BACKWARD"] = "1"
    try:
        return pyxray(binary, *(list(args) + ["--jobs", jobs]),
                      timeout=timeout)
    finally:
        os.environ.clear()
        os.environ.update(env)


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


def wait_in_pause(pid, timeout=5.0):
    """Wait until pid's main thread is blocked in pause() (or
    sigsuspend()), as a fixture that signals "ready" just before it idles
    is once its last call's temporaries are freed; True if it got there
    within timeout (then the caller reads on regardless)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open("/proc/%d/syscall" % pid) as f:
                nr = f.read().split()[0]
        except (OSError, IndexError):
            return False
        if nr in ("34", "130"):  # x86_64 pause, rt_sigsuspend
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)


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


# --------------------------------------------------------------------------
# the gate test/CMakeLists.txt puts before every test on a test bed spec

def gate(argv):
    """pyxtest.py gate SCRIPT --pyxray BIN --python SPEC [...]: say why a
    test on a test bed spec cannot run, as a named skip ("no test root:
    ...", "unsupported version ..."), else run SCRIPT with the same
    arguments.  Every script gets these skips, even one that does not know
    specs; the interpreter is run once in its mode first (a mode that does
    not work fails here, loudly)."""
    if not argv:
        log("usage: pyxtest.py gate SCRIPT --pyxray BIN --python PY [...]")
        return FAIL
    script, rest = argv[0], argv[1:]
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--python")
    known, _ = ap.parse_known_args(rest)
    spec = _spec_of(known.python) if known.python else None
    if spec is not None and spec.kind == "root":
        problem = spec.root_problem()
        if problem:
            skip(spec.text, None, "no test root: " + problem)
        version = python_version(spec.text)
        if not supported(vtuple(version)):
            skip(spec.text, version, UNSUPPORTED)
        log("%s: Python %s" % (spec.label(), version))
    cleanup()
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, script] + rest)


if __name__ == "__main__":
    if sys.argv[1:2] == ["gate"]:
        sys.exit(gate(sys.argv[2:]))
    log("usage: pyxtest.py gate SCRIPT --pyxray BIN --python PY [...]")
    sys.exit(FAIL)
