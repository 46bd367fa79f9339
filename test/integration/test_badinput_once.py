"""pyxray's exit codes and one-line errors on bad input.  Version-independent:
run once, --python being the driver Python.  Targets that must be Python
processes use a supported Python with DWARF (PYX_TARGET_PYTHON, else the
first found under /root/.pyenv/versions).

  test_badinput_once.py --pyxray BIN --python PY   exit 0 pass, 1 fail
"""

import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402

SEIZER = r"""
import ctypes, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
PTRACE_SEIZE = 0x4206
r = libc.ptrace(ctypes.c_long(PTRACE_SEIZE), ctypes.c_long(int(sys.argv[1])),
                None, None)
if r != 0:
    print("ERR %d" % ctypes.get_errno(), flush=True)
    sys.exit(1)
print("SEIZED", flush=True)
time.sleep(300)
"""


def expect_error(chk, res, what, code, words):
    """The exit code, and stderr one line containing one of words."""
    ok = chk.ok(res.rc == code, "%s: exit %d" % (what, code),
                "      " + res.describe())
    msg = T.one_line_stderr(res)
    chk.ok(msg is None, "%s: stderr is exactly one line" % what,
           "      " + str(msg))
    low = res.err.lower()
    chk.ok(any(w.lower() in low for w in words),
           "%s: stderr mentions one of %s" % (what, words),
           "      stderr: %r" % res.err[:500])
    if ok:
        T.log("       stderr: %s" % res.err.strip()[:300])


def case_no_process(chk, args):
    pid = T.free_pid()
    res = T.pyxray(args.pyxray, "stacks", pid)
    expect_error(chk, res, "nonexistent pid %d" % pid, T.EXIT["NO_PROCESS"],
                 ["no such process"])


def case_not_python(chk, args):
    sleeper = T.spawn(["sleep", "60"])
    try:
        time.sleep(0.1)  # exec'd
        res = T.pyxray(args.pyxray, "stacks", sleeper.pid)
        expect_error(chk, res, "non-Python process (sleep)",
                     T.EXIT["NOT_PYTHON"], ["not a python"])
        chk.ok(not T.stopped_threads(sleeper.pid),
               "non-Python process: sleep left running")
    finally:
        T.kill_child(sleeper)


def nobody_can_run(binary):
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534",
                        "--clear-groups", "test", "-x", binary])
    return r.returncode == 0


def case_permission(chk, args, target_py):
    if shutil.which("setpriv") is None:
        T.log("  skip permission case: no setpriv")
        return
    if os.geteuid() != 0:
        T.log("  skip permission case: not running as root")
        return
    binary = args.pyxray
    if not nobody_can_run(binary):
        d = T.tmpdir()
        binary = os.path.join(d, "pyxray")
        shutil.copy(args.pyxray, binary)
        os.chmod(binary, 0o755)
        T.log("  (copied pyxray to %s: nobody cannot reach the original)"
              % binary)
    fx = T.Fixture(target_py, threads=1)
    try:
        res = T.run(["setpriv", "--reuid=65534", "--regid=65534",
                     "--clear-groups", binary, "stacks", str(fx.pid)])
        expect_error(chk, res, "root target, pyxray as nobody",
                     T.EXIT["PERMISSION"],
                     ["permission", "CAP_SYS_PTRACE", "ptrace_scope"])
        chk.ok(not T.stopped_threads(fx.pid) and fx.alive(),
               "permission: target left running")
    finally:
        fx.stop()


def case_usage(chk, args):
    for argv in (["stacks", "notapid"], ["frobnicate"], ["stacks"],
                 ["stacks", "1", "--no-such-option"]):
        res = T.pyxray(args.pyxray, *argv)
        expect_error(chk, res, "pyxray %s" % " ".join(argv), T.EXIT["USAGE"],
                     ["usage", "invalid", "unknown", "argument", "option",
                      "pid", "command"])


def case_help(chk, args):
    for argv in (["--help"], ["stacks", "--help"], ["--version"]):
        res = T.pyxray(args.pyxray, *argv)
        chk.ok(res.rc == 0 and res.out.strip() != "",
               "pyxray %s: exit 0 and prints to stdout" % " ".join(argv),
               "      " + res.describe())
    res = T.pyxray(args.pyxray, "--version")
    chk.ok(re.search(r"\d+\.\d+", res.out) is not None,
           "--version prints a version number", "      %r" % res.out)
    res = T.pyxray(args.pyxray, "stacks", "--help")
    for opt in ("--json", "--context", "--nonblocking", "--deadline-ms"):
        chk.ok(opt in res.out, "stacks --help mentions %s" % opt)


def expect_usage(chk, args, argv, words):
    """Exit 2, one stderr line with a hint, naming one of words."""
    res = T.pyxray(args.pyxray, *argv)
    what = "pyxray %s" % " ".join(argv)
    expect_error(chk, res, what, T.EXIT["USAGE"], words)
    chk.ok("hint:" in res.err, "%s: the error line has a hint" % what,
           "      stderr: %r" % res.err[:300])


def case_bounds(chk, args):
    """Values out of range are usage errors before anything is attached
    (a PID nobody uses: a binary that does not check would say so)."""
    pid = str(T.free_pid())
    for argv in (["stacks", pid, "--context", "1000000"],
                 ["stacks", pid, "--context=51"],
                 ["stacks", pid, "--context", "-1"],
                 ["stacks", pid, "--max-depth=0"],
                 ["stacks", pid, "--deadline-ms", "99999999999"],
                 ["census", pid, "--top=-3"],
                 ["refs", pid, "--max-depth=70000", "--type", "dict"]):
        expect_usage(chk, args, argv, [argv[2].split("=")[0]])


def build_hooks(args):
    """True/False: the PYX_TEST_HOOKS the pyxray under test was built with
    (its build directory's CMakeCache.txt; a cache that predates the option
    is a build without hooks); None if no cache is found."""
    for d in (os.environ.get("PYX_BUILD_DIR"), os.path.dirname(args.pyxray)):
        cache = os.path.join(d, "CMakeCache.txt") if d else None
        if not cache or not os.path.exists(cache):
            continue
        with open(cache) as f:
            m = re.search(r"^PYX_TEST_HOOKS:BOOL=(\w+)$", f.read(), re.M)
        return bool(m) and m.group(1).upper() in ("ON", "1", "TRUE", "YES")
    return None


def case_test_hooks(chk, args):
    """--hold-ms (keeps a target stopped) exists in test builds only."""
    for cmd in ("stacks", "census", "refs"):
        res = T.pyxray(args.pyxray, cmd, "--help")
        chk.ok(res.rc == 0 and "hold-ms" not in res.out,
               "%s --help does not mention --hold-ms" % cmd,
               "      " + res.describe())
    hooks = build_hooks(args)
    T.log("  build with test hooks: %s" % hooks)
    if hooks is None:
        T.log("  skip --hold-ms refusal: no CMakeCache.txt next to the binary")
    elif hooks:
        for cmd in ("stacks", "census", "refs"):
            for form in (["--hold-ms", "5"], ["--hold-ms=5"]):
                res = T.pyxray(args.pyxray, cmd, *(form + ["--help"]))
                chk.ok(res.rc == 0, "test build: %s %s accepted" % (
                    cmd, " ".join(form)), "      " + res.describe())
    else:
        pid = str(T.free_pid())
        for cmd in ("stacks", "census", "refs"):
            for form in (["--hold-ms", "5"], ["--hold-ms=5"]):
                expect_usage(chk, args, [cmd, pid] + form + ["--type", "x"]
                             if cmd == "refs" else [cmd, pid] + form,
                             ["--hold-ms", "unknown"])


# Every option of every command, with a valid value.
OPTIONS = {
    "stacks": ["--context=2", "--max-depth=10", "--deadline-ms=1000",
               "--layout=auto", "--debug-dir=/tmp", "--json", "--native",
               "--verbose"],
    "census": ["--top=5", "--sort=count", "--interval=0.5",
               "--save=/tmp/x.pxh", "--max-copy=100", "--deadline-ms=1000",
               "--layout=table", "--debug-dir=/tmp", "--json",
               "--tracked-only", "--verbose"],
    "refs": ["--type=dict", "--addr=0x1000", "--chains=3", "--max-depth=10",
             "--dot=/tmp/x.dot", "--max-copy=100", "--deadline-ms=1000",
             "--layout=dwarf", "--debug-dir=/tmp", "--json", "--verbose"],
    "info": ["--layout=debug-offsets", "--debug-dir=/tmp", "--json",
             "--verbose"],
    "diff": ["--top=3", "--sort=bytes", "--json"],
    "layout": ["--from-dwarf=/nonexistent", "--table=3.11.7"],
}


def case_opt_forms(chk, args, target_py):
    """--opt=VALUE and --opt VALUE for every option of every command: the
    value is parsed and checked before --help answers."""
    pid = str(T.free_pid())
    for cmd, opts in sorted(OPTIONS.items()):
        for opt in opts:
            forms = [[opt]]
            if "=" in opt:
                forms.append(opt.split("=", 1))
            for form in forms:
                res = T.pyxray(args.pyxray, cmd, *(form + ["--help"]))
                chk.ok(res.rc == 0 and res.err == "",
                       "%s %s accepted" % (cmd, " ".join(form)),
                       "      " + res.describe())
    for argv, words in ((["stacks", pid, "--json=yes"], ["--json"]),
                        (["stacks", pid, "--context="], ["--context"]),
                        (["stacks", pid, "--context=abc"], ["--context"]),
                        (["stacks", pid, "--context"], ["--context"]),
                        (["census", pid, "--sort=name"], ["--sort"]),
                        (["refs", pid, "--type="], ["--type"]),
                        (["info", pid, "--layout=bogus"], ["--layout"]),
                        (["stacks", pid, "--bogus=1"], ["--bogus"]),
                        (["diff", "a", "b", "--top=x"], ["--top"])):
        expect_usage(chk, args, argv, words)
    if target_py is None:
        T.log("  skip --opt=VALUE on a live target: no supported Python "
              "with DWARF")
        return
    fx = T.Fixture(target_py, threads=2)
    try:
        for form in (["--max-depth=1"], ["--max-depth", "1"]):
            res = T.pyxray(args.pyxray, "stacks", fx.pid, "--json", *form)
            ok = res.rc == 0
            if ok:
                ok = all(len(t["frames"]) <= 1 for t in res.json()["threads"])
            chk.ok(ok, "stacks %s: one frame per thread" % " ".join(form),
                   "      " + res.describe())
        for form in (["--context=1"], ["--context", "1"]):
            res = T.pyxray(args.pyxray, "stacks", fx.pid, *form)
            chk.ok(res.rc == 0 and re.search(r"^\s+>\s*\d+ ", res.out, re.M),
                   "stacks %s: context lines shown" % " ".join(form),
                   "      " + res.describe())
        res = T.pyxray(args.pyxray, "census", fx.pid, "--json", "--top=2",
                       "--sort=count")
        chk.ok(res.rc == 0 and len(res.json()["types"]) == 2,
               "census --top=2 --sort=count: two types",
               "      " + res.describe())
        res = T.pyxray(args.pyxray, "refs", fx.pid, "--json", "--type=dict",
                       "--chains=1")
        chk.ok(res.rc == 0 and len(res.json()["groups"]) <= 1,
               "refs --type=dict --chains=1: one group",
               "      " + res.describe())
        res = T.pyxray(args.pyxray, "info", fx.pid, "--json", "--layout=dwarf")
        chk.ok(res.rc == 0 and res.json()["layout"] == "dwarf",
               "info --layout=dwarf: the layout from DWARF",
               "      " + res.describe())
    finally:
        fx.stop()


def case_already_traced(chk, args, target_py):
    fx = T.Fixture(target_py, threads=1)
    seizer = None
    try:
        seizer = T.spawn([sys.executable, "-c", SEIZER, str(fx.pid)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        line = seizer.stdout.readline().decode().strip()
        if line != "SEIZED":
            T.log("  skip already-traced case: PTRACE_SEIZE from a helper "
                  "failed: %r" % line)
            return
        chk.ok(T.tracer_pid(fx.pid) == seizer.pid,
               "already traced: helper %d is the tracer" % seizer.pid)
        res = T.pyxray(args.pyxray, "stacks", fx.pid)
        expect_error(chk, res, "target traced by another process",
                     T.EXIT["BUSY"], ["traced", "debugger", "tracer"])
        chk.ok(not T.stopped_threads(fx.pid) and fx.alive(),
               "already traced: target left running")
    finally:
        if seizer is not None:
            T.kill_child(seizer)
        fx.stop()


def case_stripped(chk, args):
    """The driver Python (Debian's, stripped) while pyxray has no built-in
    layout tables: exit 7, or 0 with a real answer once it has them."""
    py = args.python
    ok, what = T.has_dwarf(py)
    version = T.python_version(py)
    if ok or not (T.SUPPORTED[0] <= T.vtuple(version) <= T.SUPPORTED[1]):
        T.log("  skip stripped case: %s (%s) is not a stripped supported "
              "Python" % (py, version))
        return
    fx = T.Fixture(py, threads=1)
    try:
        res = T.pyxray(args.pyxray, "stacks", fx.pid, "--json")
        if res.rc == 0:
            try:
                n = len(res.json()["threads"])
            except (ValueError, KeyError, TypeError):
                n = -1
            chk.ok(n == len(fx.truth["threads"]),
                   "stripped %s: exit 0 reports all %d threads" % (
                       version, len(fx.truth["threads"])),
                   "      " + res.describe())
        else:
            expect_error(chk, res, "stripped %s (%s)" % (py, version),
                         T.EXIT["NO_DEBUG_INFO"], ["debug", "DWARF"])
        chk.ok(not T.stopped_threads(fx.pid) and fx.alive(),
               "stripped: target left running")
    finally:
        fx.stop()


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    chk = T.Checker("bad input")
    target_py = T.find_dwarf_python()
    T.log("python target for the Python cases: %s" % target_py)

    T.log("case: nonexistent pid")
    case_no_process(chk, args)
    T.log("case: non-Python process")
    case_not_python(chk, args)
    T.log("case: usage errors")
    case_usage(chk, args)
    T.log("case: --help / --version")
    case_help(chk, args)
    T.log("case: option values out of range")
    case_bounds(chk, args)
    T.log("case: test hooks only in test builds")
    case_test_hooks(chk, args)
    T.log("case: --opt=VALUE and --opt VALUE for every option")
    case_opt_forms(chk, args, target_py)
    if target_py is None:
        T.log("  skip permission and already-traced cases: no supported "
              "Python with DWARF found")
    else:
        T.log("case: permission denied")
        case_permission(chk, args, target_py)
        T.log("case: already traced")
        case_already_traced(chk, args, target_py)
    T.log("case: stripped interpreter")
    case_stripped(chk, args)
    return chk.finish()


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        T.cleanup()
