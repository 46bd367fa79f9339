"""Killing pyxray while it holds the target stopped must leave the target
running; a signal after the target was resumed must do what it does to any
program.

  test_safety.py --pyxray BIN --python PY      exit 0 pass, 1 fail, 77 skip

Uses the hidden hook --hold-ms (test builds): pyxray keeps the target stopped
that long.
  * For SIGINT, SIGTERM, SIGTSTP (Ctrl-Z) and SIGKILL: start `pyxray stacks
    PID --hold-ms 3000`, wait until every thread of the target is stopped
    (t/T in /proc), send the signal to pyxray; then within 1 s no thread may
    be stopped, the target must keep running (the spinner thread's utime
    keeps increasing), and pyxray must exit 11 ("interrupted"; SIGKILL: die
    by it).
  * A signal sent to the target while pyxray holds it (fixtures/
    target_signal.py records SIGUSR1 in a file) is delivered once pyxray,
    sent SIGTERM, has detached it.
  * After the target was resumed, while pyxray blocks writing its output to
    a full pipe: SIGTSTP stops pyxray (state T; SIGCONT and it finishes and
    exits 0), SIGINT and SIGTERM end it as they end any program (death by
    the signal), not "interrupted: the target was detached" (exit 11).
"""

import fcntl
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402

HOLD_MS = 3000
F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ from Python 3.10 on


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
    # The truth's TID is the target's own: the host's differs in a PID
    # namespace (container mode).
    spinner = T.host_tid(fx.pid, fx.thread(role="spinner")["native_thread_id"])
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
            # Death by the signal would leave the target to the kernel's
            # detach (which loses a signal the tracer had waited for): the
            # handler must detach it and say so.
            chk.ok(rc == T.EXIT["INTERRUPTED"],
                   "%s: pyxray exits %d (interrupted)"
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


SIGNAL_TARGET = os.path.join(T.FIXTURES, "target_signal.py")


class SignalFixture(object):
    """fixtures/target_signal.py: records each SIGUSR1 in a file."""

    def __init__(self, python, workdir):
        self.truth_path = os.path.join(workdir, "signal-truth.json")
        self.receipt = os.path.join(workdir, "signal-receipt")
        self.log_path = os.path.join(workdir, "signal-fixture.log")
        self.logf = open(self.log_path, "w")
        self.proc = T.spawn([python, SIGNAL_TARGET, self.truth_path,
                             self.receipt, "--lifetime", "300"],
                            stdout=self.logf, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        deadline = time.monotonic() + 20
        while not os.path.exists(self.truth_path):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("target_signal.py wrote no truth (rc %s): "
                                   "%s" % (self.proc.poll(),
                                           read(self.log_path)))
            time.sleep(0.05)

    def received(self):
        try:
            return read(self.receipt).split()
        except FileNotFoundError:
            return []

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        T.kill_child(self.proc)
        self.logf.close()


def pending_signal_case(chk, args, sfx, workdir):
    """SIGUSR1 sent to the target while pyxray holds it stopped must reach
    it once pyxray, sent SIGTERM, has detached it."""
    T.log("case pending signal:")
    errp = os.path.join(workdir, "pending.err")
    with open(os.devnull, "w") as out, open(errp, "w") as err:
        p = T.spawn([args.pyxray, "stacks", str(sfx.pid), "--hold-ms",
                     str(HOLD_MS)], stdout=out, stderr=err)
    try:
        took = wait_all_stopped(sfx.pid, p, 10)
        if not chk.ok(took is not None, "pending signal: every target "
                      "thread stopped while pyxray holds it",
                      "      pyxray rc %s, stderr: %s" % (p.poll(),
                                                         read(errp))):
            return
        os.kill(sfx.pid, signal.SIGUSR1)
        time.sleep(0.1)
        chk.ok(sfx.received() == [], "pending signal: not handled while "
               "the target is held", "      received %s" % sfx.received())
        os.kill(p.pid, signal.SIGTERM)
        try:
            rc = p.wait(10)
        except subprocess.TimeoutExpired:
            rc = None
        chk.ok(rc == T.EXIT["INTERRUPTED"], "pending signal: pyxray exits "
               "%d (interrupted)" % T.EXIT["INTERRUPTED"],
               "      rc %r, stderr %r" % (rc, read(errp)))
        deadline = time.monotonic() + 3
        while not sfx.received() and time.monotonic() < deadline:
            time.sleep(0.02)
        chk.ok(sfx.received() == ["SIGUSR1"], "pending signal: the target "
               "handled the SIGUSR1 once after the detach",
               "      received %s" % sfx.received())
        chk.ok(sfx.alive() and not T.wait_all_running(sfx.pid, 1.0) and
               T.tracer_pid(sfx.pid) == 0, "pending signal: the target "
               "runs, untraced", "      states %s" %
               T.thread_states(sfx.pid))
    finally:
        T.kill_child(p)


def full_pipe():
    """A pipe whose buffer is full: whoever writes to it blocks."""
    r, w = os.pipe()
    try:
        fcntl.fcntl(w, F_SETPIPE_SZ, 4096)
    except OSError:
        pass
    fl = fcntl.fcntl(w, fcntl.F_GETFL)
    fcntl.fcntl(w, fcntl.F_SETFL, fl | os.O_NONBLOCK)
    try:
        while True:
            os.write(w, b"x" * 4096)
    except BlockingIOError:
        pass
    try:
        while True:
            os.write(w, b"x")
    except BlockingIOError:
        pass
    fcntl.fcntl(w, fcntl.F_SETFL, fl)  # pyxray shares the file: blocking
    return r, w


def blocked_in_write(pid):
    """Whether pid sleeps in write(2) (its stdout pipe is full)."""
    try:
        sc = read("/proc/%d/syscall" % pid).split()
    except OSError:
        sc = []
    if sc and sc[0] == "1":
        return True
    try:
        return "pipe_write" in read("/proc/%d/wchan" % pid)
    except OSError:
        return False


def pyxray_state(pid):
    try:
        return read("/proc/%d/stat" % pid).rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def after_resume_case(chk, args, sfx, sig, workdir):
    """pyxray has resumed the target and blocks writing its output: sig
    must have its usual effect, not "interrupted" (exit 11)."""
    name = signal.Signals(sig).name
    T.log("case %s after the target was resumed:" % name)
    errp = os.path.join(workdir, "after-%s.err" % name)
    r, w = full_pipe()
    with open(errp, "w") as err:
        p = T.spawn([args.pyxray, "stacks", str(sfx.pid)], stdout=w,
                    stderr=err)
    os.close(w)
    try:
        deadline = time.monotonic() + 10
        while not blocked_in_write(p.pid) and p.poll() is None and \
                time.monotonic() < deadline:
            time.sleep(0.01)
        if not chk.ok(p.poll() is None and blocked_in_write(p.pid),
                      "%s after resume: pyxray blocks writing its output"
                      % name, "      rc %s, stderr %r" % (p.poll(),
                                                         read(errp))):
            return
        chk.ok(T.tracer_pid(sfx.pid) == 0 and
               not T.wait_all_running(sfx.pid, 1.0),
               "%s after resume: the target runs, untraced" % name)
        os.kill(p.pid, sig)
        if sig == signal.SIGTSTP:
            deadline = time.monotonic() + 2
            while pyxray_state(p.pid) != "T" and p.poll() is None and \
                    time.monotonic() < deadline:
                time.sleep(0.01)
            chk.ok(pyxray_state(p.pid) == "T", "SIGTSTP after resume: "
                   "pyxray is stopped (state T)", "      state %s, rc %s, "
                   "stderr %r" % (pyxray_state(p.pid), p.poll(),
                                  read(errp)))
            if p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)
            with os.fdopen(r, "rb") as rf:
                r = None
                out = rf.read()
            try:
                rc = p.wait(10)
            except subprocess.TimeoutExpired:
                rc = None
            chk.ok(rc == 0 and len(out) > 0,
                   "SIGTSTP after resume: continued, pyxray finishes and "
                   "exits 0", "      rc %r, stderr %r" % (rc, read(errp)))
        else:
            try:
                rc = p.wait(10)
            except subprocess.TimeoutExpired:
                rc = None
            chk.ok(rc == -sig, "%s after resume: pyxray dies by %s, as any "
                   "program would" % (name, name),
                   "      rc %r, stderr %r" % (rc, read(errp)))
        chk.ok(sfx.alive() and T.tracer_pid(sfx.pid) == 0,
               "%s after resume: the target is alive and untraced" % name)
    finally:
        if r is not None:
            os.close(r)
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
        sfx = SignalFixture(args.python, workdir)
        try:
            pending_signal_case(chk, args, sfx, workdir)
            for sig in (signal.SIGTSTP, signal.SIGINT, signal.SIGTERM):
                after_resume_case(chk, args, sfx, sig, workdir)
        finally:
            sfx.stop()
    finally:
        fx.stop()
    return chk.finish()


if __name__ == "__main__":
    sys.exit(main())
