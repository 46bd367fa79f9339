"""A chroot'ed target: stacks_target.py runs chroot'ed into a directory that
holds its interpreter's tree (bind mounts in a mount namespace of its own).
/proc/PID/maps then shows the mapped files by their paths in pyxray's root
(the chroot directory's path in front), which do not exist inside the
target's root: pyxray must reach them through /proc/PID/map_files, find the
interpreter, and its stacks must match the fixture's own truth, with source
lines read inside the target's root.

  test_chroot_once.py --pyxray BIN --python PY    exit 0, 1 or 77

make_root() and chroot_script() are also used by test_files_once.py.
"""

import json
import os
import shlex
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402
import test_stacks as S  # noqa: E402

TOPS = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin")


def make_root(d):
    """A chroot directory under d: app/ (the fixtures copied) and out/
    (the truth), real directories the host sees too."""
    root = os.path.join(d, "root")
    for sub in ("app", "out", "tmp", "proc"):
        os.makedirs(os.path.join(root, sub))
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    return root


def chroot_script(root, py, argv, mount_proc=False):
    """Shell for `unshare --mount --propagation private sh -c`: bind what
    py needs (/usr, /lib*, its prefix) into root, then exec py argv
    chroot'ed there, as the same PID."""
    q = shlex.quote
    exe = os.path.realpath(py)
    prefix = os.path.dirname(os.path.dirname(exe))
    lines = ["set -e"]
    for top in TOPS:
        inside = root + top
        if os.path.islink(top):
            lines.append("ln -s %s %s" % (q(os.readlink(top)), q(inside)))
        elif os.path.isdir(top):
            lines.append("mkdir -p %s && mount --bind %s %s"
                         % (q(inside), q(top), q(inside)))
    if not any(prefix == t or prefix.startswith(t + "/") for t in TOPS):
        lines.append("mkdir -p %s && mount --bind %s %s"
                     % (q(root + prefix), q(prefix), q(root + prefix)))
    if mount_proc:
        lines.append("mount -t proc proc %s" % q(root + "/proc"))
    lines.append("exec chroot %s %s" % (q(root), " ".join(q(a) for a in [exe] + argv)))
    return "\n".join(lines) + "\n"


def start_chrooted(root, py, argv, truth_inside, mount_proc=False, timeout=20):
    """(process, truth) of py argv run chroot'ed into root; the truth file
    is truth_inside (a path inside the root)."""
    script = chroot_script(root, py, argv, mount_proc)
    p = T.spawn(["unshare", "--mount", "--propagation", "private",
                 "sh", "-c", script])
    truth_path = root + truth_inside
    deadline = time.monotonic() + timeout
    while not os.path.exists(truth_path) and time.monotonic() < deadline:
        if p.poll() is not None:
            break
        time.sleep(0.05)
    if not os.path.exists(truth_path):
        return p, None
    with open(truth_path) as f:
        return p, json.load(f)


def chroot_usable():
    """None, or why this machine cannot run the chroot tests."""
    if os.geteuid() != 0:
        return "not root: chroot and mount need it"
    for tool in ("unshare", "chroot", "mount"):
        if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool):
            return "%s(8) not found" % tool
    return None


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    why = chroot_usable()
    if why:
        T.log("SKIP: %s" % why)
        return T.SKIP
    py = T.find_dwarf_python(preferred=("3.12", "3.11", "3.13", "3.10"))
    if py is None:
        T.log("SKIP: no CPython 3.8-3.13 with DWARF on this machine")
        return T.SKIP
    d = T.tmpdir()
    root = make_root(d)
    shutil.copy(os.path.join(T.FIXTURES, "stacks_target.py"),
                os.path.join(root, "app"))
    chk = T.Checker("chroot")
    outer, truth = start_chrooted(
        root, py, ["/app/stacks_target.py", "/out/truth.json", "--threads", "3"],
        "/out/truth.json")
    pid = outer.pid
    try:
        if not chk.ok(truth is not None, "the fixture runs chroot'ed (%s) and "
                      "wrote its truth" % py):
            return chk.finish()
        chk.ok(truth["pid"] == pid, "the fixture is the spawned process")
        chk.ok(os.path.realpath(os.readlink("/proc/%d/root" % pid)) ==
               os.path.realpath(root), "the target's root is the chroot directory")
        with open("/proc/%d/maps" % pid) as f:
            exe_maps = [l.split()[-1] for l in f if l.rstrip().endswith(
                os.path.basename(os.path.realpath(py)))]
        chk.ok(exe_maps and exe_maps[0].startswith(os.path.realpath(root) + "/"),
               "maps name the interpreter by its path in our root (%s)"
               % (exe_maps[:1],))

        res = T.pyxray(args.pyxray, "stacks", pid, "--json")
        if not chk.ok(res.rc == 0, "pyxray stacks --json finds the chroot'ed "
                      "interpreter", res.describe()):
            return chk.finish()
        doc = res.json()
        got = {t["thread_id"]: t for t in doc["threads"]}
        for tt in truth["threads"]:
            g = got.get(tt["thread_id"])
            label = "thread %s (%s)" % (tt["name"], tt["role"])
            if not chk.ok(g is not None, "%s is reported" % label):
                continue
            chk.ok(g["name"] == tt["name"], "%s name" % label)
            spin = truth.get("spinner_lines") if tt["role"] == "spinner" else None
            diff = S.frame_diff(tt["frames"], g["frames"], spin)
            chk.ok(not diff, "%s frames match" % label, "\n".join(diff))

        text = T.pyxray(args.pyxray, "stacks", pid, "--context", "1")
        marker = None
        with open(os.path.join(root, "app", "stacks_target.py")) as f:
            for line in f:
                if "# PARK" in line:
                    marker = line.split("#")[0].strip()
        chk.ok(text.rc == 0 and marker and marker in text.out,
               "source lines are read inside the target's root (%r)" % marker,
               text.describe())
        info = T.pyxray(args.pyxray, "info", pid)
        chk.ok(info.rc == 0 and truth["python_version"] in info.out,
               "pyxray info", info.describe())
        if shutil.which("setpriv"):
            # Without CAP_SYS_ADMIN and CAP_CHECKPOINT_RESTORE the links of
            # map_files cannot be followed: the path inside the root is
            # the way left (the chroot directory taken off the maps path).
            res = T.run(["setpriv", "--bounding-set",
                         "-sys_admin,-checkpoint_restore", args.pyxray,
                         "stacks", str(pid), "--json"])
            chk.ok(res.rc == 0 and len(res.json()["threads"]) == len(truth["threads"]),
                   "without map_files (no CAP_SYS_ADMIN): found through the "
                   "path inside the root", res.describe())
        chk.ok(not T.wait_all_running(pid, 1.0), "no thread of the target left stopped")
    finally:
        T.kill_child(outer)
    return chk.finish()


if __name__ == "__main__":
    sys.exit(main())
