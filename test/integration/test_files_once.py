"""Source lines are only shown from files the target itself could read,
resolved inside the target's root (issue 9, defect 1).

files_target.py runs code compiled under names the test chooses, each idling
in a thread "code-I".  `pyxray stacks PID --context 2` reads the named files:

- as `nobody`, on the host: /etc/shadow, a root-only file, by absolute and
  relative name, must not be shown; a world-readable file must (absolute and
  relative to the target's working directory);
- as root, chroot'ed by itself into a directory that holds its prefix: an
  absolute symlink inside the root to a host file, a "/.."-escape, a relative
  "../"-escape from the target's cwd and a magic link (/proc/PID/root/...) must
  not reach the host's file; a file inside the root, by absolute and
  relative name, and an absolute symlink to it inside the root, must be
  shown.

  test_files_once.py --pyxray BIN --python PY    exit 0, 1 or 77
"""

import json
import os
import pwd
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402
import test_chroot_once as C  # noqa: E402

FIXTURE = "files_target.py"


def source_text(marker):
    """files_target.py's SOURCE, line for line, with marker on each line:
    what pyxray shows, if it reads the file, carries the marker."""
    lines = ["import time", "def idle(ready):", "    ready.set()",
             "    while True:", "        time.sleep(0.2)", "idle(READY)"]
    return "".join("%s  # %s\n" % (l, marker) for l in lines)


def thread_blocks(text):
    """{thread name: its lines of the text output}."""
    out, name = {}, None
    for line in text.splitlines():
        if line.startswith("Thread "):
            name = line.rsplit('"', 2)[-2] if line.endswith('"') else None
            out[name] = []
        elif name is not None:
            out[name].append(line)
    return out


def wait_truth(p, path, timeout=20):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < deadline:
        if p.poll() is not None:
            break
        time.sleep(0.05)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def check_threads(chk, label, truth, text, want, secrets):
    """want: {file name: marker that must show, or None}; secrets: strings
    that must appear nowhere in text."""
    blocks = thread_blocks(text)
    for t in truth["threads"]:
        lines = blocks.get(t["name"])
        if not chk.ok(lines is not None and any(
                "(%s:%d)" % (t["file"], truth["idle_line"]) in l for l in lines),
                "%s: thread %s in %r is reported" % (label, t["name"], t["file"])):
            continue
        marker = want.get(t["file"])
        if marker:
            chk.ok(any(marker in l for l in lines),
                   "%s: %r is shown (%s)" % (label, t["file"], marker),
                   "\n".join(lines))
        else:
            leaked = [s for s in secrets if any(s in l for l in lines)]
            chk.ok(not leaked, "%s: nothing shown for %r" % (label, t["file"]),
                   "\n".join(lines[:8]))
    for s in secrets:
        chk.ok(s not in text, "%s: %r appears nowhere" % (label, s[:40]))


def nobody_case(chk, args, d):
    """The target runs as nobody on the host."""
    py = "/usr/bin/python3"
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        chk.ok(True, "(no user nobody: case skipped)")
        return
    if not os.path.exists(py) or shutil.which("setpriv") is None:
        chk.ok(True, "(no %s or setpriv(1): nobody case skipped)" % py)
        return
    work = os.path.join(d, "nobody")
    os.makedirs(os.path.join(work, "out"))
    os.chmod(work, 0o755)
    os.chmod(os.path.join(work, "out"), 0o777)
    shutil.copy(os.path.join(T.FIXTURES, FIXTURE), work)
    os.chmod(os.path.join(work, FIXTURE), 0o644)
    readable = os.path.join(work, "readable.py")
    secret = os.path.join(work, "secret.py")
    with open(readable, "w") as f:
        f.write(source_text("READABLE-BY-NOBODY"))
    os.chmod(readable, 0o644)
    with open(secret, "w") as f:
        f.write(source_text("ROOT-ONLY-SECRET"))
    os.chmod(secret, 0o600)
    shadow = []
    if os.path.exists("/etc/shadow"):
        with open("/etc/shadow") as f:
            shadow = [l.strip() for l in f if len(l.strip()) > 4]
    names = ["/etc/shadow", secret, readable, "readable.py",
             "../%s/secret.py" % os.path.basename(work)]
    truth_path = os.path.join(work, "out", "truth.json")
    p = T.spawn(["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
                 "--clear-groups", py, os.path.join(work, FIXTURE), truth_path,
                 "--cwd", work] + names)
    try:
        truth = wait_truth(p, truth_path)
        if not chk.ok(truth is not None, "nobody: the fixture runs as nobody"):
            return
        with open("/proc/%d/status" % truth["pid"]) as f:
            uid = [l.split()[4] for l in f if l.startswith("Uid:")][0]
        chk.ok(uid == str(pw.pw_uid), "nobody: the target's fsuid is nobody's")
        res = T.pyxray(args.pyxray, "stacks", truth["pid"], "--context", "2")
        if not chk.ok(res.rc == 0, "nobody: pyxray stacks --context 2", res.describe()):
            return
        check_threads(chk, "nobody", truth, res.out,
                      {readable: "READABLE-BY-NOBODY",
                       "readable.py": "READABLE-BY-NOBODY"},
                      shadow + ["ROOT-ONLY-SECRET"])
        res = T.pyxray(args.pyxray, "stacks", truth["pid"], "--context", "2", "--json")
        chk.ok(res.rc == 0 and not any(s in res.out for s in shadow + ["ROOT-ONLY-SECRET"]),
               "nobody: --json shows no line of a file nobody cannot read",
               res.describe())
        chk.ok(not T.wait_all_running(truth["pid"], 1.0),
               "nobody: no thread of the target left stopped")
    finally:
        T.kill_child(p)


def chroot_case(chk, args, d):
    """The target runs as root and chroot's itself into a directory that
    holds its interpreter's prefix (bound at the same path): only that
    root is its to name."""
    why = C.chroot_usable()
    py = T.find_dwarf_python(preferred=("3.12", "3.11", "3.13", "3.10"))
    if why or py is None:
        chk.ok(True, "(chroot case skipped: %s)" % (why or "no CPython with DWARF"))
        return
    root = C.make_root(d)
    shutil.copy(os.path.join(T.FIXTURES, FIXTURE), os.path.join(root, "app"))
    # A host file that does not exist inside the root.
    host_dir = os.path.join(d, "host-only")
    os.makedirs(host_dir)
    host_secret = os.path.join(host_dir, "secret.py")
    with open(host_secret, "w") as f:
        f.write(source_text("HOST-FILE-NOT-IN-ROOT"))
    with open(os.path.join(root, "app", "good.py"), "w") as f:
        f.write(source_text("INSIDE-THE-ROOT"))
    os.symlink(host_secret, os.path.join(root, "app", "evil.py"))
    os.symlink("/app/good.py", os.path.join(root, "app", "goodlink.py"))
    up = "/".join([".."] * 16)
    names = ["/app/evil.py",                  # absolute symlink to the host
             "/" + up + host_secret,          # "/.." past the root
             up + host_secret,                # "../" from the cwd (/app)
             # a magic link: this driver's root is the host's
             "/proc/%d/root%s" % (os.getpid(), host_secret),
             "/app/good.py",                  # inside: shown
             "/app/goodlink.py",              # symlink inside: shown
             "good.py"]                       # relative to the cwd: shown
    q = C.shlex.quote
    prefix = os.path.dirname(os.path.dirname(os.path.realpath(py)))
    script = "\n".join([
        "set -e",
        "mkdir -p %s && mount --bind %s %s" % (q(root + prefix), q(prefix),
                                               q(root + prefix)),
        "mount -t proc proc %s" % q(root + "/proc"),
        "exec %s" % " ".join(q(a) for a in [
            py, os.path.join(root, "app", FIXTURE), "/out/truth.json",
            "--chroot", root, "--cwd", "/app"] + names)]) + "\n"
    p = T.spawn(["unshare", "--mount", "--propagation", "private",
                 "sh", "-c", script])
    try:
        truth = wait_truth(p, os.path.join(root, "out", "truth.json"))
        if not chk.ok(truth is not None, "chroot: the fixture runs chroot'ed"):
            return
        chk.ok(os.path.realpath(os.readlink("/proc/%d/root" % truth["pid"])) ==
               os.path.realpath(root), "chroot: the target's root is %s" % root)
        chk.ok(not os.path.exists(root + host_secret),
               "chroot: the host's file is not inside the root")
        res = T.pyxray(args.pyxray, "stacks", truth["pid"], "--context", "2")
        if not chk.ok(res.rc == 0, "chroot: pyxray stacks --context 2", res.describe()):
            return
        check_threads(chk, "chroot", truth, res.out,
                      {"/app/good.py": "INSIDE-THE-ROOT",
                       "/app/goodlink.py": "INSIDE-THE-ROOT",
                       "good.py": "INSIDE-THE-ROOT"},
                      ["HOST-FILE-NOT-IN-ROOT"])
        chk.ok(not T.wait_all_running(truth["pid"], 1.0),
               "chroot: no thread of the target left stopped")
    finally:
        T.kill_child(p)


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    if os.geteuid() != 0:
        T.log("SKIP: not root: the test runs targets as other users and chroot'ed")
        return T.SKIP
    d = T.tmpdir()
    chk = T.Checker("files")
    nobody_case(chk, args, d)
    chroot_case(chk, args, d)
    return chk.finish()


if __name__ == "__main__":
    sys.exit(main())
