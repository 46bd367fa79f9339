#!/usr/bin/env python3
"""pyxray on core files that are compressed, moved, incomplete or wrong.

  test_core_once.py --pyxray BIN --python PY     exit 0 pass, 1 fail, 77 skip

With gcores of stacks_target.py under Debian's /usr/bin/python3 (the
interpreter in the executable) and a pyenv Python (a shared libpython):
  - systemd-coredump's compressed cores (zstd, lz4, xz, named as it names
    them) read as the plain core: the same stacks, info names the method;
  - a core moved with its files into another tree: --sysroot DIR (the
    program was run from a copy that is then moved under DIR);
  - a missing library, a library of another build (wrong build-id), an
    --exe of another program: a one-line error naming the file and the
    build-ids, exit 13 (I/O error) for a missing file, 19 for another build;
  - a truncated kernel core, cut at many places: a warning, exit 0, 9 (the
    error names the range and why) or 14 (the layout check could not read
    what it checks), never a crash; a compressed gcore cut short: exit 16,
    no thread (gdb writes its notes last);
  - a corrupt core, a file that is not ELF, an ELF that is not a core:
    one-line errors, exit 16; --exe with a PID: exit 2.
"""

import glob
import json
import os
import shutil
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402
import test_core as TCORE  # noqa: E402

IO, FORMAT, USAGE, MISMATCH = 13, 16, 2, 19


def one_line_error(chk, res, what, code, words):
    chk.ok(res.rc == code, "%s: exit %d" % (what, code), res.describe())
    chk.ok(T.one_line_stderr(res) is None, "%s: one line on stderr" % what,
           res.describe())
    missing = [w for w in words if w not in res.err]
    chk.ok(not missing, "%s: the error names %s" % (what, words),
           "      missing %s in %r" % (missing, res.err[:600]))


def nt_files(core):
    """The paths of the core's NT_FILE note."""
    with open(core, "rb") as f:
        d = f.read()
    phoff = struct.unpack_from("<Q", d, 32)[0]
    phnum = struct.unpack_from("<H", d, 56)[0]
    for i in range(phnum):
        t, fl, off, va, pa, fs, ms, al = struct.unpack_from(
            "<IIQQQQQQ", d, phoff + i * 56)
        if t != 4:
            continue
        p = off
        while p + 12 <= off + fs:
            nsz, dsz, typ = struct.unpack_from("<III", d, p)
            desc = p + 12 + ((nsz + 3) & ~3)
            if typ == 0x46494c45:
                n = struct.unpack_from("<Q", d, desc)[0]
                names = d[desc + 16 + 24 * n:desc + dsz].split(b"\0")[:n]
                return sorted(set(x.decode() for x in names))
            p = desc + ((dsz + 3) & ~3)
    return []


def build_id(path):
    out = T.run(["readelf", "-n", path]).out
    for line in out.splitlines():
        if "Build ID:" in line:
            return line.split("Build ID:")[1].strip()
    return ""


def link_tree(paths, root, skip=()):
    """Hard links (copies across file systems) of paths under root."""
    for p in paths:
        if not p.startswith("/") or p in skip or not os.path.isfile(p):
            continue
        dst = root + p
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        try:
            os.link(p, dst)
        except OSError:
            shutil.copy(p, dst)


def stacks_ok(chk, args, fx, core, what, extra=()):
    res = T.pyxray(args.pyxray, "stacks", core, "--json", *extra, timeout=120)
    if chk.ok(res.rc == 0, "%s: stacks exits 0" % what, res.describe()):
        TCORE.check_stacks_doc(chk, fx, res.json(), what, fx.pid)
    return res


def case_compressed(chk, args, fx, core, d):
    for tool, argv, ext in (("zstd", ["zstd", "-q", "-1", "-c"], "zst"),
                            ("lz4", ["lz4", "-q", "-c"], "lz4"),
                            ("xz", ["xz", "-0", "-T2", "-c"], "xz")):
        if not shutil.which(tool):
            T.log("  skip %s: no %s command" % (ext, tool))
            continue
        # systemd-coredump's name: core.COMM.UID.BOOTID.PID.USEC.EXT
        name = os.path.join(d, "core.python3.0.%s.%d.1764115200000000.%s"
                            % ("0" * 32, fx.pid, ext))
        with open(name, "wb") as out:
            r = T.subprocess.run(argv + [core], stdout=out)
        if not chk.ok(r.returncode == 0, "%s of the core" % tool):
            continue
        stacks_ok(chk, args, fx, name, "%s core" % ext)
        res = T.pyxray(args.pyxray, "info", name, "--json")
        c = (res.json().get("core") or {}) if res.rc == 0 else {}
        chk.ok(c.get("compression") == ext.replace("zst", "zstd") and
               c.get("time") == 1764115200,
               "%s core: info names the compression and the time in its "
               "name" % ext, json.dumps(c)[:400])
        if ext == "zst":
            # Cut: what decompresses is read as a truncated core.
            cut = name + ".cut.zst"
            with open(name, "rb") as f, open(cut, "wb") as g:
                g.write(f.read()[:os.path.getsize(name) * 2 // 3])
            # gdb writes its notes last: cut, the core has no thread left.
            res = T.pyxray(args.pyxray, "stacks", cut)
            one_line_error(chk, res, "cut zstd core", FORMAT,
                           ["truncated", "no thread"])
            os.unlink(cut)
        os.unlink(name)


def case_truncated(chk, args, d):
    """A kernel core (notes first) cut short: read as far as it goes."""
    why = TCORE.kernel_core_problem(T.spec("/usr/bin/python3"))
    if why:
        T.log("  skip truncated kernel core: %s" % why)
        return
    kd = os.path.join(d, "kernel")
    os.mkdir(kd)
    fx, core = TCORE.kernel_core("/usr/bin/python3", kd)
    fx.stop()
    if not chk.ok(core is not None, "the kernel wrote a core"):
        return
    size = os.path.getsize(core)
    with open(core, "rb") as f:
        data = f.read()
    phoff = struct.unpack_from("<Q", data, 32)[0]
    phnum = struct.unpack_from("<H", data, 56)[0]
    segs = []
    for i in range(phnum):
        t, fl, off, va, pa, fs, ms, al = struct.unpack_from(
            "<IIQQQQQQ", data, phoff + i * 56)
        if t == 1 and fs >= (64 << 10):
            segs.append(off + fs // 2)
    cut = os.path.join(d, "cut.core")
    # Cut in the middle of each big segment, from the last: the first cut
    # that leaves the interpreter's own state readable gives a census of
    # what is left, marked partial.
    partial = None
    for at in ([size * 3 // 10] + sorted(segs, reverse=True))[:25]:
        with open(cut, "wb") as g:
            g.write(data[:at])
        ok = True
        for cmd in ("stacks", "census"):
            res = T.pyxray(args.pyxray, cmd, cut, "--json", timeout=120)
            # 14: the layout check could not read what it checks.
            ok = chk.ok(res.rc in (0, 9, 14) and "truncated" in res.err and
                        (res.rc == 0 or T.one_line_stderr(res) is None or
                         res.err.count("\n") == 2),
                        "%s of a core cut at byte %d: exit 0, 9 or 14, the "
                        "warning, no crash (exit %s)" % (cmd, at, res.rc),
                        res.describe()) and ok
            if res.rc == 9:
                chk.ok("not in the core: it is truncated" in res.err,
                       "%s, cut at %d: the error names the range and why"
                       % (cmd, at), res.describe())
            if cmd == "census" and res.rc == 0 and res.json().get("partial"):
                partial = (at, res.json())
        if partial or not ok:
            break
    os.unlink(cut)
    # Most cuts lose the interpreter's own dicts (its arenas lie near the
    # end of a kernel core), which the layout check reads first: exit 14.
    T.log("  info: %s" % ("a census of a cut core was partial: %d bad "
                          "objects, %d damaged lists" % (
                              partial[1].get("bad_objects"),
                              partial[1].get("damaged_lists"))
                          if partial else "no cut left a census to count"))
    res = T.pyxray(args.pyxray, "info", core, "--json")
    c = (res.json().get("core") or {}) if res.rc == 0 else {}
    chk.ok(not c.get("truncated") and c.get("size") == size,
           "the whole kernel core is not truncated", json.dumps(c)[:300])
    os.unlink(core)


def case_corrupt(chk, args, core, d):
    with open(core, "rb") as f:
        data = bytearray(f.read(1 << 16))
    bad = os.path.join(d, "phoff.core")
    hdr = bytearray(data)
    struct.pack_into("<Q", hdr, 32, 1 << 60)  # e_phoff far past the end
    with open(bad, "wb") as g:
        g.write(hdr)
    one_line_error(chk, T.pyxray(args.pyxray, "stacks", bad), "corrupt "
                   "e_phoff", FORMAT, ["program headers", bad])
    nel = os.path.join(d, "notelf.core")
    with open(nel, "wb") as g:
        g.write(b"this is not a core\n" * 100)
    one_line_error(chk, T.pyxray(args.pyxray, "census", nel), "not ELF",
                   FORMAT, ["not an ELF file"])
    one_line_error(chk, T.pyxray(args.pyxray, "stacks", "/bin/true"),
                   "an ELF that is not a core", FORMAT, ["not a core"])
    one_line_error(chk, T.pyxray(args.pyxray, "stacks", "/nonexistent/core"),
                   "no such file", USAGE, ["core file"])
    res = T.pyxray(args.pyxray, "stacks", str(os.getpid()), "--exe",
                   "/bin/true")
    one_line_error(chk, res, "--exe with a PID", USAGE, ["core"])
    for p in (bad, nel):
        os.unlink(p)


def case_files(chk, args, fx, core, d, exe):
    """The interpreter's file missing from --sysroot, or another build."""
    files = nt_files(core)
    chk.ok(exe in files, "NT_FILE names %s" % exe, "      %s" % files)
    root = os.path.join(d, "root-missing")
    link_tree(files, root, skip=(exe,))
    want = build_id(exe)
    res = T.pyxray(args.pyxray, "stacks", core, "--sysroot", root)
    one_line_error(chk, res, "%s missing" % exe, IO,
                   [exe, want, "not found", "--sysroot"])
    # Another build in its place: /bin/true's bytes under its name.
    dst = root + exe
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copy("/bin/true", dst)
    other = build_id("/bin/true")
    res = T.pyxray(args.pyxray, "census", core, "--sysroot", root)
    one_line_error(chk, res, "%s of another build" % exe, MISMATCH,
                   [exe, want, other, "not the file"])
    res = T.pyxray(args.pyxray, "stacks", core, "--exe", "/bin/true")
    if exe == os.path.realpath(fx.spec.path):
        one_line_error(chk, res, "--exe of another program", MISMATCH,
                       ["--exe /bin/true", want, other])
    shutil.rmtree(root)


def case_moved(chk, args, d):
    """Run from a copy of the interpreter, then move the copy and the other
    files under a new root: the core reads with --sysroot ROOT."""
    real = os.path.realpath("/usr/bin/python3")
    run_dir = os.path.join(d, "run")
    copy = run_dir + "/usr/bin/" + os.path.basename(real)
    os.makedirs(os.path.dirname(copy))
    shutil.copy(real, copy)
    old = os.environ.get("PYTHONHOME")
    os.environ["PYTHONHOME"] = "/usr"  # the copy's stdlib: the system's
    try:
        fx = T.Fixture(copy, threads=2)
    finally:
        if old is None:
            del os.environ["PYTHONHOME"]
        else:
            os.environ["PYTHONHOME"] = old
    core = os.path.join(d, "moved.core")
    try:
        why = TCORE.gcore(fx.pid, core)
        if not chk.ok(why is None, "gcore of the copied python", why):
            return
    finally:
        fx.stop()
    files = nt_files(core)
    root = os.path.join(d, "newroot")
    link_tree(files, root, skip=(copy,))
    os.makedirs(os.path.dirname(root + copy))
    os.rename(copy, root + copy)  # gone from where the core says
    res = T.pyxray(args.pyxray, "stacks", core)
    one_line_error(chk, res, "moved without --sysroot", IO, [copy])
    moved = os.path.join(d, "elsewhere", "moved.core")
    os.makedirs(os.path.dirname(moved))
    os.rename(core, moved)
    stacks_ok(chk, args, fx, moved, "moved core, --sysroot",
              ("--sysroot", root))
    os.unlink(moved)


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    if not shutil.which("gdb"):
        T.skip(args.python, None, "gdb (for gcore) is not installed")
    chk = T.Checker("core files, once")
    d = T.tmpdir()
    for py in ["/usr/bin/python3"] + sorted(glob.glob(
            "/root/.pyenv/versions/3.12.*/bin/python3.12"))[:1]:
        if not os.path.exists(py):
            T.log("  skip %s: not installed" % py)
            continue
        fx = T.Fixture(py, threads=2)
        core = os.path.join(d, "stacks.core")
        try:
            why = TCORE.gcore(fx.pid, core)
            if not chk.ok(why is None, "gcore of %s" % py, why):
                continue
            spec = T.spec(py)
            exe = spec.interpreter_binary()
            T.log("%s: the interpreter is in %s" % (py, exe))
            if py == "/usr/bin/python3":
                case_compressed(chk, args, fx, core, d)
                case_truncated(chk, args, d)
                case_corrupt(chk, args, core, d)
            case_files(chk, args, fx, core, d, exe)
        finally:
            fx.stop()
            if os.path.exists(core):
                os.unlink(core)
    case_moved(chk, args, d)
    return chk.finish()


if __name__ == "__main__":
    sys.exit(main())
