"""A containerised target: stacks_target.py runs in new mount and PID
namespaces, with its Python and its source bind-mounted at paths that exist
only inside.  pyxray, on the host, must find the interpreter and the sources
through /proc/PID/root, and its stacks must match the fixture's own truth.

  test_container_once.py --pyxray BIN --python PY    exit 0, 1 or 77
"""

import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402
import test_stacks as S  # noqa: E402

INSIDE = """set -e
mount -t tmpfs pyxray-test /mnt            # /mnt/* exists only in here
mkdir -p /mnt/py /mnt/app
mount --bind {prefix} /mnt/py
mount --bind {fixtures} /mnt/app
mount -t tmpfs pyxray-hide {prefix}        # hide the original install
mount -t proc proc /proc
export LD_LIBRARY_PATH=/mnt/py/lib PYTHONHOME=/mnt/py
exec /mnt/py/bin/{exe} /mnt/app/stacks_target.py {truth} --threads 3
"""


def host_pid_of_child(parent, timeout=10.0):
    """The PID (host view) of unshare's forked child."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/task/%d/children" % (parent, parent)) as f:
                kids = f.read().split()
            if kids:
                return int(kids[0])
        except FileNotFoundError:
            return None
        time.sleep(0.05)
    return None


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    py = T.find_dwarf_python(preferred=("3.12", "3.11", "3.13", "3.10"))
    if py is None:
        T.log("SKIP: no CPython 3.8-3.13 with DWARF on this machine")
        return T.SKIP
    if shutil.which("unshare") is None:
        T.log("SKIP: %s: unshare(1) not found (util-linux)" % py)
        return T.SKIP
    prefix = os.path.dirname(os.path.dirname(os.path.realpath(py)))
    d = T.tmpdir()
    truth_path = os.path.join(d, "truth.json")
    script = os.path.join(d, "inside.sh")
    with open(script, "w") as f:
        f.write(INSIDE.format(prefix=prefix, fixtures=T.FIXTURES,
                              exe=os.path.basename(py), truth=truth_path))
    chk = T.Checker("container")
    outer = T.spawn(["unshare", "--mount", "--pid", "--fork",
                     "--propagation", "private", "sh", script])
    try:
        pid = host_pid_of_child(outer.pid)
        deadline = time.monotonic() + 20
        while not os.path.exists(truth_path) and time.monotonic() < deadline:
            if outer.poll() is not None:
                break
            time.sleep(0.05)
        if not chk.ok(pid and os.path.exists(truth_path),
                      "the fixture runs in its own namespaces and wrote its truth"):
            return chk.finish()
        import json
        with open(truth_path) as f:
            truth = json.load(f)
        chk.ok(truth["pid"] != pid,
               "the target sees another PID (%s) than the host (%d)" % (truth["pid"], pid))
        chk.ok(not os.path.exists("/mnt/py/bin"),
               "the interpreter's path does not exist on the host")

        res = T.pyxray(args.pyxray, "stacks", pid, "--json")
        if not chk.ok(res.rc == 0, "pyxray stacks --json from the host", res.describe()):
            return chk.finish()
        doc = res.json()
        chk.ok(doc["python_binary"].startswith("/mnt/py/"),
               "the interpreter is named by its path inside (%s)" % doc["python_binary"])
        got = {t["thread_id"]: t for t in doc["threads"]}
        for tt in truth["threads"]:
            g = got.get(tt["thread_id"])
            label = "thread %s (%s)" % (tt["name"], tt["role"])
            if not chk.ok(g is not None, "%s is reported" % label):
                continue
            chk.ok(g["name"] == tt["name"], "%s name" % label)
            chk.ok(g.get("ns_native_thread_id") == tt["native_thread_id"],
                   "%s namespace TID %s (host TID %s)" % (
                       label, g.get("ns_native_thread_id"), g.get("native_thread_id")))
            chk.ok(g.get("native_thread_id") is not None and
                   os.path.exists("/proc/%d/task/%d" % (pid, g["native_thread_id"])),
                   "%s host TID is a thread of the target" % label)
            spin = truth.get("spinner_lines") if tt["role"] == "spinner" else None
            diff = S.frame_diff(tt["frames"], g["frames"], spin)
            chk.ok(not diff, "%s frames match" % label, "\n".join(diff))

        text = T.pyxray(args.pyxray, "stacks", pid)
        marker = None
        with open(os.path.join(T.FIXTURES, "stacks_target.py")) as f:
            for line in f:
                if "# PARK" in line:
                    marker = line.split("#")[0].strip()
        chk.ok(text.rc == 0 and marker and marker in text.out,
               "source lines are read through /proc/PID/root (%r)" % marker, text.describe())
        chk.ok(not T.wait_all_running(pid, 1.0), "no thread of the target left stopped")
    finally:
        T.kill_child(outer)
        if pid:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
    return chk.finish()


if __name__ == "__main__":
    sys.exit(main())
