"""pyxray stacks --native against a target in a container whose root has its
own C library, different from the host's (issue 9, defect 5).

  test_native_container_once.py --pyxray BIN --python PY    exit 0, 1 or 77

The root is the Debian unstable tree scripts/mkroot.sh caches at
/var/cache/pyxray/roots/sid (PYX_NATIVE_ROOT overrides).  A pyenv CPython
with DWARF is bind-mounted into it at /mnt/py, a path that exists only
inside, and fixtures/native_container_target.py runs there in new mount and
PID namespaces: the interpreter loads the root's libc, not the host's.
pyxray, on the host, must unwind through that libc with its own call frame
information and name its functions from its own symbols.  Three containers:
  * pivot:    the root pivoted to (pivot_root), as container runtimes do;
  * upgraded: the same, and then the container's libc is replaced on disk
              (a package upgrade): the target runs a file that is gone, the
              path names another (maps: "... (deleted)");
  * chroot:   `unshare --root` (a chroot): the maps show the host's paths
              of the container's files.  Its Python side needs defect 4's
              resolver: while `stacks` without --native cannot read this
              target, the mode is skipped, not failed.

Checks, per mode, for the threads in time.sleep, Lock.acquire and
socket.recv and the main thread:
  * no native_error; the innermost frame is in the container's libc, named
    as the blocking call (clock_nanosleep, a futex wait, recv) or, for an
    internal function without a debug file, not at all; every frame before
    the Python caller is native, and the walk went from libc into the
    interpreter's library (/mnt/py/..., or ROOT/mnt/py/... for the chroot,
    as its maps spell it);
  * libc frames name the library by the path the target's maps give;
  * every non-inlined libc frame that a symbol of the container's libc
    (read through /proc/PID/map_files) covers is named as that symbol (the
    host's libc at the same offset holds other functions: logged, to show
    the check can tell);
  * the Python frames equal the fixture's truth and `stacks --json`;
  * text output names libc.so; no thread is left stopped.
"""

import json
import os
import re
import shutil
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402

ROOT = os.environ.get("PYX_NATIVE_ROOT", "/var/cache/pyxray/roots/sid")
TARGET = "native_container_target.py"
ROLES = ("sleeper", "locker", "receiver", "main")

# The container.  {pivot} is the pivot_root step (a container as runtimes
# make one) or nothing; {enter} runs the interpreter (chroot for "chroot").
# The libc the target maps is a copy on the container's own tmpfs,
# bind-mounted at its path: "upgraded" replaces it there.
INSIDE = """set -e
R={root}
L=/usr/lib/x86_64-linux-gnu/libc.so.6
mount --bind "$R" "$R"                     # a mount point to pivot to
mount -t tmpfs pyxray-test "$R/mnt"        # /mnt/* exists only in here
mkdir -p "$R/mnt/py" "$R/mnt/app" "$R/mnt/out" "$R/mnt/old" "$R/mnt/lib"
cp "$R$L" "$R/mnt/lib/libc.so.6"
mount --bind "$R/mnt/lib/libc.so.6" "$R$L"
mount --bind {prefix} "$R/mnt/py"
mount --bind {fixtures} "$R/mnt/app"
mount --bind {out} "$R/mnt/out"
mount -t proc proc "$R/proc"
cd "$R"
{pivot}
export LD_LIBRARY_PATH=/mnt/py/lib PYTHONHOME=/mnt/py
exec {enter}/mnt/py/bin/{exe} /mnt/app/{target} /mnt/out/truth.json \
    --lifetime 300
"""
PIVOT = "pivot_root . mnt/old; cd /; umount -l /mnt/old"
MODES = ("pivot", "upgraded", "chroot")

# --------------------------------------------------------------------------
# ELF: function symbols of a file, and its load address

def elf_functions(path):
    """(first PT_LOAD vaddr, [(value, size, name)] of the sized function
    symbols of .dynsym and .symtab), from an ELF64 little-endian file."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("%s: not an ELF64 little-endian file" % path)
    (phoff, shoff) = struct.unpack_from("<QQ", data, 0x20)
    (phentsize, phnum, shentsize, shnum) = struct.unpack_from("<HHHH",
                                                              data, 0x36)
    vaddr = None
    for i in range(phnum):
        p_type, _, _, p_vaddr = struct.unpack_from(
            "<IIQQ", data, phoff + i * phentsize)
        if p_type == 1 and (vaddr is None or p_vaddr < vaddr):
            vaddr = p_vaddr
    secs = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
            for i in range(shnum)]
    syms = []
    for (_, sh_type, _, _, off, size, link, _, _, entsize) in secs:
        if sh_type not in (2, 11) or not entsize:      # SYMTAB, DYNSYM
            continue
        stroff = secs[link][4]
        for k in range(size // entsize):
            st_name, st_info, _, _, value, sz = struct.unpack_from(
                "<IBBHQQ", data, off + k * entsize)
            if (st_info & 0xf) not in (2, 10) or not value or not sz:
                continue                                  # FUNC, IFUNC
            end = data.index(b"\0", stroff + st_name)
            syms.append((value, sz, data[stroff + st_name:end].decode(
                "ascii", "replace")))
    return (vaddr or 0) & ~0xfff, syms


def names_at(syms, addr):
    """The names of the symbols covering addr, with their aliases."""
    hit = set(v for v, sz, _ in syms if v <= addr < v + sz)
    return set(n for v, _, n in syms if v in hit)


def norm(name):
    """A C function's name without __GI_/__libc_ prefixes, underscores and
    symbol versions: what DWARF, .dynsym and .symtab agree on."""
    if not name:
        return None
    name = name.split("@")[0]
    name = re.sub(r"^_*(GI_)?_*(libc_)?_*", "", name)
    return name


def same_function(a, b):
    """Whether two names of a function agree: the same once normalised, or
    one extends the other (DWARF's __libc_start_main_impl is exported as
    __libc_start_main)."""
    a, b = norm(a), norm(b)
    if not a or not b:
        return False
    short, long_ = sorted((a, b), key=len)
    return a == b or (len(short) >= 4 and long_.startswith(short))


# --------------------------------------------------------------------------

def host_pid_of_child(parent, timeout=10.0):
    """The host PID of the process unshare forked (python, after exec)."""
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


def fmt(f):
    if f.get("native"):
        return "[C] %s (%s) %s%s" % (f.get("function"), f.get("library"),
                                     f.get("address"),
                                     " inlined" if f.get("inlined") else "")
    return "[py] %s %s:%s" % (f.get("function"), f.get("file"), f.get("line"))


def dump(frames):
    return "\n".join("        #%-2d %s" % (i, fmt(f))
                     for i, f in enumerate(frames))


def check_thread(chk, mode, tt, t, plain, libc, bias, csyms, hsyms, differ):
    label = "%s: thread %s (ns TID %s)" % (mode, tt["role"],
                                          tt["native_thread_id"])
    frames = t.get("frames") or []
    chk.ok(t.get("native_error") is None, "%s: no native_error" % label,
           "      %r\n%s" % (t.get("native_error"), dump(frames)))
    py = [f for f in frames if not f.get("native")]
    got = [(f.get("function"), f.get("name"), f.get("file"), f.get("line"))
           for f in py]
    want = [(f["function"], f["name"], f["file"], f["line"])
            for f in tt["frames"]]
    chk.ok(got == want, "%s: Python frames equal the truth" % label,
           "      got:\n%s\n      truth: %s" % (dump(py), want))
    chk.ok([f.get("function") for f in py] ==
           [f.get("function") for f in plain.get("frames") or []],
           "%s: Python frames equal those without --native" % label)

    caller = [i for i, f in enumerate(frames)
              if not f.get("native") and f.get("function") == tt["caller"]]
    wanted = set(norm(n) for n in tt["native"])

    def blocked_in(i, f):
        """Named as the blocking call, or an internal function that no
        symbol names without a debug file (glibc's cancellation and futex
        helpers): the innermost frames, in libc."""
        if not f.get("native") or f.get("library") != libc:
            return False
        if norm(f.get("function")) in wanted:
            return True
        off = int(f["address"], 16) - bias - (0 if i == 0 else 1)
        return f.get("function") is None and not names_at(csyms, off)
    blocking = [0] if frames and blocked_in(0, frames[0]) else []
    inside = frames[:caller[0]] if caller else []
    chk.ok(bool(caller) and bool(blocking) and blocking[0] < caller[0] and
           all(f.get("native") for f in inside),
           "%s: %s (or an unnamed internal function) in the container's "
           "libc runs inside %s (Python)" % (
               label, "/".join(tt["native"][:3]), tt["caller"]),
           "      stack:\n%s" % dump(frames))
    # Libraries are named as the target's maps spell them: for a chroot
    # (no mount namespace of its own for paths) that is the host's path,
    # the root's prefix included.
    py_dir = (os.path.normpath(ROOT) if mode == "chroot" else "") + "/mnt/py/"
    interp = [i for i, f in enumerate(inside)
              if (f.get("library") or "").startswith(py_dir)]
    chk.ok(bool(blocking) and bool(interp) and blocking[0] < interp[0],
           "%s: unwound from libc into the interpreter (%s...)" % (
               label, py_dir), "      stack:\n%s" % dump(frames))

    checked, bad = 0, []
    for i, f in enumerate(frames):
        if not f.get("native") or f.get("inlined") or \
                f.get("library") != libc:
            continue
        # A return address is after its call: the call is the byte before.
        off = int(f["address"], 16) - bias - (0 if i == 0 else 1)
        theirs = names_at(csyms, off)
        if not theirs:
            continue  # an internal function: no exported symbol covers it
        checked += 1
        if not any(same_function(f.get("function"), n) for n in theirs):
            bad.append("%s at libc+%#x: the container's libc has %s there"
                       % (f.get("function"), off, sorted(theirs)))
        host = names_at(hsyms, off)
        if not any(same_function(h, n) for h in host for n in theirs):
            differ.append("%s: libc+%#x is %s in the container's libc, %s "
                          "in the host's" % (tt["role"], off,
                                             sorted(theirs)[:2],
                                             sorted(host)[:2] or "nothing"))
    chk.ok(not bad, "%s: the %d libc frames with an exported symbol are "
           "named from the container's libc" % (label, checked),
           "\n".join("      " + b for b in bad) +
           "\n      stack:\n%s" % dump(frames))
    return checked


def libc_map(pid):
    """(path as pyxray reads it in /proc/PID/maps, start, map_files path) of
    the target's libc mapping at file offset 0."""
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) < 6 or int(parts[2], 16) != 0:
                continue
            path = parts[5].rstrip("\n")
            base = os.path.basename(path.replace(" (deleted)", ""))
            if base.startswith("libc.so") or base.startswith("libc-"):
                return (path, int(parts[0].split("-")[0], 16),
                        "/proc/%d/map_files/%s" % (pid, parts[0]))
    return None, None, None


def upgrade_libc(pid, libc):
    """A package upgrade in the container: a new file (the host's libc) at
    the path, the old one deleted while the target still runs it."""
    new = "/proc/%d/root/mnt/lib/libc.so.6.new" % pid
    shutil.copyfile(os.path.realpath(libc), new)
    res = T.run(["nsenter", "--target", str(pid), "--mount", "--root",
                 "--wd", "mount", "--bind", "/mnt/lib/libc.so.6.new",
                 "/usr/lib/x86_64-linux-gnu/libc.so.6"])
    os.unlink("/proc/%d/root/mnt/lib/libc.so.6" % pid)
    return res


def run_mode(args, chk, mode, py):
    """One container: its checks go to chk.  Returns how many libc frames
    were checked against the container's symbols, None if skipped."""
    prefix = os.path.dirname(os.path.dirname(os.path.realpath(py)))
    d = T.tmpdir()
    truth_path = os.path.join(d, "truth.json")
    script = os.path.join(d, "inside.sh")
    with open(script, "w") as f:
        f.write(INSIDE.format(
            root=ROOT, prefix=prefix, fixtures=T.FIXTURES, out=d,
            exe=os.path.basename(py), target=TARGET,
            pivot=PIVOT if mode != "chroot" else "",
            enter='unshare --root="$R" --wd=/ ' if mode == "chroot" else ""))
    T.log("%s:" % mode)
    log = open(os.path.join(d, "fixture.log"), "w")
    outer = T.spawn(["unshare", "--mount", "--pid", "--fork", "--kill-child",
                     "--propagation", "private", "sh", script],
                    stdout=log, stderr=log)
    pid = None
    try:
        pid = host_pid_of_child(outer.pid)
        deadline = time.monotonic() + 30
        while not os.path.exists(truth_path) and time.monotonic() < deadline:
            if outer.poll() is not None:
                break
            time.sleep(0.05)
        if not chk.ok(pid and os.path.exists(truth_path),
                      "%s: the fixture runs in the container and wrote its "
                      "truth" % mode,
                      "      " + open(log.name).read()[-2000:]):
            return None
        with open(truth_path) as f:
            truth = json.load(f)
        if mode == "upgraded":
            res = upgrade_libc(pid, truth["libc"]["path"])
            chk.ok(res.rc == 0, "%s: libc replaced in the container"
                   % mode, res.describe())
        libc, start, mapped = libc_map(pid)
        if not chk.ok(libc and truth["libc"]["start"] == start,
                      "%s: the target maps libc as %s" % (mode, libc)):
            return None
        if mode == "pivot":
            chk.ok(libc == truth["libc"]["path"], "%s: pyxray and the "
                   "target see the same path" % mode)
        if mode == "upgraded":
            chk.ok(libc.endswith(" (deleted)"), "%s: the maps say the "
                   "file the target runs is deleted" % mode)
        host = os.path.realpath(truth["libc"]["path"])
        with open(mapped, "rb") as a, open(host, "rb") as b:
            if a.read() == b.read():
                T.log("SKIP: the container's libc (%s in %s) is the host's"
                      % (libc, ROOT))
                return None
        vaddr, csyms = elf_functions(mapped)
        _, hsyms = elf_functions(host)
        bias = start - vaddr
        T.log("target pid %d (ns pid %d), python %s, libc %s (%d function "
              "symbols; the host's has %d)" % (
                  pid, truth["pid"], truth["python_version"], libc,
                  len(csyms), len(hsyms)))

        plain = T.pyxray(args.pyxray, "stacks", pid, "--json")
        if plain.rc != 0 and mode == "chroot":
            T.log("  SKIP %s: pyxray cannot read the Python side of a "
                  "chroot'ed target yet (issue 9, defect 4): %s"
                  % (mode, plain.describe()))
            return None
        res = T.pyxray(args.pyxray, "stacks", pid, "--native", "--json")
        if not chk.ok(res.rc == 0 and plain.rc == 0,
                      "%s: stacks --native --json and stacks --json exit 0"
                      % mode, "      %s\n      %s" % (res.describe(),
                                                      plain.describe())):
            return None
        doc, base = res.json(), plain.json()
        if args.verbose:
            T.log(json.dumps(doc, indent=1))
        got = {t.get("ns_native_thread_id"): t for t in doc["threads"]}
        base = {t.get("ns_native_thread_id"): t for t in base["threads"]}
        differ, checked = [], 0
        for tt in truth["threads"]:
            t = got.get(tt["native_thread_id"])
            if chk.ok(t is not None and tt["native_thread_id"] in base,
                      "%s: thread %s (ns TID %s) is reported" % (
                          mode, tt["role"], tt["native_thread_id"])):
                checked += check_thread(
                    chk, mode, tt, t, base[tt["native_thread_id"]], libc,
                    bias, csyms, hsyms, differ)
        for line in differ:
            T.log("  (the host's libc would differ: %s)" % line)

        text = T.pyxray(args.pyxray, "stacks", pid, "--native")
        name = os.path.basename(libc.replace(" (deleted)", ""))
        chk.ok(text.rc == 0 and "(%s" % name in text.out,
               "%s: stacks --native (text) names %s" % (mode, name),
               text.describe())
        chk.ok(not T.wait_all_running(pid, 1.0),
               "%s: no thread of the target left stopped" % mode)
        return checked
    finally:
        T.kill_child(outer)
        if pid:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        log.close()


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    py = T.find_dwarf_python(preferred=("3.12", "3.11", "3.13", "3.10"))
    if py is None:
        T.log("SKIP: no CPython 3.8-3.13 with DWARF on this machine")
        return T.SKIP
    for tool in ("unshare", "nsenter", "pivot_root"):
        if shutil.which(tool) is None:
            T.log("SKIP: %s(8) not found (util-linux)" % tool)
            return T.SKIP
    for d in ("", "/mnt", "/proc", "/usr/lib/x86_64-linux-gnu/libc.so.6"):
        if not os.path.exists(ROOT + d):
            T.log("SKIP: no %s%s: no container root (make it with "
                  "scripts/mkroot.sh)" % (ROOT, d))
            return T.SKIP
    chk = T.Checker("native container (%s, %s)" % (ROOT, py))
    ran = {}
    for mode in MODES:
        ran[mode] = run_mode(args, chk, mode, py)
    if all(n is None for n in ran.values()) and not chk.failures:
        return T.SKIP
    chk.ok(sum(n or 0 for n in ran.values()) > 0, "libc frames covered by "
           "symbols of the container's libc were checked (%s)" % ran)
    return chk.finish()


if __name__ == "__main__":
    sys.exit(main())
