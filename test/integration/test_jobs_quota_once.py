#!/usr/bin/env python3
"""The default number of threads follows the cgroup's CPU quota.

  test_jobs_quota_once.py --pyxray BIN --python PY    exit 0 pass, 1 fail, 77 skip

In a container limited to one CPU on a big host the CPU set still lists
every CPU; pyxray's copy and census threads past the quota would be
throttled, and the copy's while the target is stopped.  A cgroup is made
with a quota of half a CPU (cgroup v1's cpu controller, or v2's cpu.max):
`census --json` run inside it on a heap of about 64 MiB (over the 32 MiB
under which the census uses one thread anyway) must say "jobs": 1, and with
a quota of as many CPUs as the machine has, that many (at most 16).  The
two censuses must agree.  Skipped (77) when no cgroup can be made here.
"""

import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402

HEAP = ("import sys, time\nx = [[i] for i in range(900000)]\n"
        "print('ready', flush=True)\ntime.sleep(120)\n")


def make_cgroup():
    """(directory, setter(cpus)) of a new cgroup with a cpu quota, or
    (None, reason)."""
    name = "pyxray-test-%d" % os.getpid()
    v1 = "/sys/fs/cgroup/cpu"
    if os.path.exists(os.path.join(v1, "cpu.cfs_quota_us")):
        d = os.path.join(v1, name)

        def set_v1(cpus):
            with open(os.path.join(d, "cpu.cfs_period_us"), "w") as f:
                f.write("100000")
            with open(os.path.join(d, "cpu.cfs_quota_us"), "w") as f:
                f.write(str(int(cpus * 100000)))
        try:
            os.mkdir(d)
            return d, set_v1
        except OSError as e:
            return None, "cannot make a v1 cpu cgroup: %s" % e
    v2 = "/sys/fs/cgroup"
    try:
        with open(os.path.join(v2, "cgroup.subtree_control")) as f:
            if "cpu" not in f.read().split():
                return None, "cgroup v2 without the cpu controller here"
    except OSError as e:
        return None, "no cgroup v2 here: %s" % e
    d = os.path.join(v2, name)

    def set_v2(cpus):
        with open(os.path.join(d, "cpu.max"), "w") as f:
            f.write("%d 100000" % int(cpus * 100000))
    try:
        os.mkdir(d)
        return d, set_v2
    except OSError as e:
        return None, "cannot make a v2 cgroup: %s" % e


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def census_in(cg, pyxray, pid):
    """census --json run from inside cgroup cg."""
    script = 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"'
    p = subprocess.run(["sh", "-c", script, "sh", cg, pyxray, "census",
                        str(pid), "--json", "--no-placement", "--top", "0"],
                       capture_output=True, text=True, timeout=120)
    return p


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    version = T.check_target_python(args.python)
    ck = T.Checker("jobs and the cgroup quota (%s)" % version)
    cpus = len(os.sched_getaffinity(0))
    cg, set_quota = make_cgroup()
    if cg is None:
        print("SKIP: %s" % set_quota)
        return 77
    target = T.spawn([args.python, "-c", HEAP], stdout=subprocess.PIPE)
    try:
        # the heap built (about 64 MiB of lists), then idle
        ck.ok(target.stdout.readline().strip() == b"ready", "the target "
              "built its heap", "RSS %d" % rss_bytes(target.pid))
        docs = {}
        for quota, want in ((0.5, 1), (cpus, min(cpus, 16))):
            set_quota(quota)
            p = census_in(cg, os.path.abspath(args.pyxray), target.pid)
            if not ck.ok(p.returncode == 0, "census in a cgroup of %g CPUs "
                         "exits 0" % quota, p.stderr):
                continue
            doc = json.loads(p.stdout)
            docs[quota] = doc
            ck.ok(doc["copied_bytes"] >= 32 << 20, "the heap copied is over "
                  "32 MiB", "copied %d" % doc["copied_bytes"])
            ck.ok(doc["jobs"] == want, "a quota of %g CPUs: %d thread(s)"
                  % (quota, want), "jobs %r" % doc["jobs"])
        if len(docs) == 2:
            a, b = docs.values()
            ck.ok(a["types"] == b["types"] and a["objects"] == b["objects"],
                  "the same census on 1 and %d threads" % min(cpus, 16))
        ck.ok(not T.wait_all_running(target.pid), "no thread left stopped")
    finally:
        T.kill_child(target)
        for _ in range(50):
            try:
                os.rmdir(cg)
                break
            except OSError:
                time.sleep(0.05)
        else:
            shutil.rmtree(cg, ignore_errors=True)
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main())
