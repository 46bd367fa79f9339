"""Killing pyxray while it holds the target stopped must leave the target
running.

  test_safety.py --pyxray BIN --python PY      exit 0 pass, 1 fail, 77 skip

Uses the hidden hook --hold-ms: pyxray keeps the target stopped that long.
For SIGINT, SIGTERM, SIGTSTP (Ctrl-Z) and SIGKILL: start `pyxray stacks PID --hold-ms 3000`,
wait until every thread of the target is stopped (t/T in /proc), send the
signal to pyxray, then within 1 s no thread may be stopped, and the target
must keep running (the spinner thread's utime keeps increasing).
"""

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402

HOLD_MS = 3000


def wait_all_stopped(pid, proc, timeout):
    """Seconds it took until every thread of pid is in t/T, or None if
    pyxray exited first or the timeout passed."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        states = T.thread_states(pid)
        if states and all(st in ("t", "T") for st, _ in states.values()):
            return time.monotonic() - t0
        if proc.poll() is not None:
            return None
        time.sleep(0.002)
    return None


def keeps_running(pid, tid, window=1.0):
    """True when thread tid accumulates CPU time within window seconds."""
    u0 = T.utime(pid, tid)
    deadline = time.monotonic() + window
    while time.monotonic() < deadline:
        time.sleep(0.05)
        u1 = T.utime(pid, tid)
        if u0 is not None and u1 is not None and u1 > u0:
            return True
    return False


def read(path):
    with open(path) as f:
        return f.read()


def one_case(chk, args, fx, sig, workdir):
    """sig None: let the hold run out (checks the hook itself)."""
    name = "no signal" if sig is None else signal.Signals(sig).name
    T.log("case %s:" % name)
    spinner = fx.thread(role="spinner")["native_thread_id"]
    outp = os.path.join(workdir, "out-%s" % name.replace(" ", "_"))
    errp = outp + ".err"
    hold = HOLD_MS if sig is not None else 300
    with open(outp, "w") as out, open(errp, "w") as err:
        p = T.spawn([args.pyxray, "stacks", str(fx.pid), "--json",
                     "--hold-ms", str(hold)], stdout=out, stderr=err)
    try:
        took = wait_all_stopped(fx.pid, p, 10)
        if not chk.ok(took is not None,
                      "%s: every target thread stopped (t/T) while pyxray "
                      "holds it" % name,
                      "      pyxray rc %s, states %s\n      stderr: %s" % (
                          p.poll(), T.thread_states(fx.pid), read(errp))):
            return
        T.log("  all %d threads stopped %.0f ms after pyxray started; "
              "states %s" % (len(T.thread_states(fx.pid)), took * 1000,
                             sorted(set(s for s, _ in
                                        T.thread_states(fx.pid).values()))))
        t_sig = time.monotonic()
        if sig is not None:
            time.sleep(0.05)  # well inside the hold
            t_sig = time.monotonic()
            os.kill(p.pid, sig)
        if sig is None:
            left = T.wait_all_running(fx.pid, hold / 1000.0 + 2.0)
        else:
            left = T.wait_all_running(fx.pid, 1.0)
        resumed = time.monotonic() - t_sig
        chk.ok(not left, "%s: no target thread in t/T within %s" % (
            name, "1 s" if sig is not None else "the hold + 2 s"),
            "      still stopped after %.0f ms: %s %s" % (
                resumed * 1000, left, T.thread_states(fx.pid)))
        if not left:
            T.log("  target resumed %.0f ms after the %s" % (
                resumed * 1000, "signal" if sig else "stop was seen"))
        try:
            rc = p.wait(10)
        except subprocess.TimeoutExpired:
            rc = None
        errtext = read(errp)
        T.log("  pyxray exit: %s%s; stderr: %r" % (
            rc, " (killed by %s)" % signal.Signals(-rc).name
            if rc is not None and rc < 0 else "", errtext.strip()[:300]))
        if sig is None:
            chk.ok(rc == 0, "no signal: pyxray exits 0 after the hold")
        elif sig == signal.SIGKILL:
            chk.ok(rc == -signal.SIGKILL, "SIGKILL: pyxray died by SIGKILL",
                   "      rc %r" % rc)
        else:
            chk.ok(rc in (T.EXIT["INTERRUPTED"], -sig),
                   "%s: pyxray exits %d (interrupted) or dies by the signal"
                   % (name, T.EXIT["INTERRUPTED"]), "      rc %r" % rc)
            if rc == T.EXIT["INTERRUPTED"]:
                msg = T.one_line_stderr(T.Result([], rc, "", errtext, 0))
                chk.ok(msg is None, "%s: stderr is one line" % name,
                       "      " + str(msg))
        alive = fx.alive()
        chk.ok(alive, "%s: the target is alive" % name,
               "      target rc %s, log: %s" % (fx.proc.returncode, fx.log()))
        if alive:
            chk.ok(keeps_running(fx.pid, spinner),
                   "%s: the spinner thread keeps running (utime grows)" % name,
                   "      states %s" % T.thread_states(fx.pid))
            chk.ok(T.tracer_pid(fx.pid) == 0, "%s: the target is not traced "
                   "any more" % name, "      TracerPid %d" % T.tracer_pid(
                       fx.pid))
    finally:
        T.kill_child(p)


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    version = T.check_target_python(args.python)
    chk = T.Checker("safety %s (%s)" % (args.python, version))
    fx = T.Fixture(args.python, threads=4)
    workdir = T.tmpdir()
    try:
        T.log("target pid %d, %d threads" % (fx.pid,
                                             len(fx.truth["threads"])))
        for sig in (None, signal.SIGINT, signal.SIGTERM, signal.SIGTSTP,
                    signal.SIGKILL):
            left = T.stopped_threads(fx.pid)
            if not chk.ok(fx.alive() and not left, "target alive and running "
                          "before the next case",
                          "      stopped: %s; later cases not run" % left):
                break
            one_case(chk, args, fx, sig, workdir)
        left = T.wait_all_running(fx.pid, 1.0)
        chk.ok(not left, "at the end no target thread is in t/T",
               "      %s" % left)
    finally:
        fx.stop()
    return chk.finish()


if __name__ == "__main__":
    sys.exit(main())
