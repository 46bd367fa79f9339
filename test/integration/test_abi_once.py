#!/usr/bin/env python3
"""Builds the ABI layer must not read as something else.

Free-threaded builds (3.13t) are refused with a clear error (exit 6), not read
as GIL builds.  No free-threaded build exists here, so two fakes stand in,
each carrying one signal a real one has:
  - a copy of a 3.13 libpython whose _Py_DebugOffsets say free_threaded = 1
    (the field CPython writes for debuggers; the interpreter runs as before);
  - an unchanged copy named libpython3.13t.so.1.0 (the free-threaded ABI flag).
(The third signal, PyObject.ob_tid in the DWARF, is covered by u-abi.)

A version pyxray cannot learn from the file (a 3.8-3.10 libpython under a
name without the version, stripped of DWARF, with a build-id no table has)
is read with its own version's table, confirmed by sys.version, never with
another version's table that happens to validate.

  test_abi_once.py --pyxray BIN --python PY     exit 0, 1 or 77
"""

import glob
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402
import test_layouts as L  # noqa: E402

FT_DETAIL = "free-threaded build (Py_GIL_DISABLED): not supported yet"


def pyenv_python(minor):
    """The pyenv CPython 3.<minor> executable and its libpython, or None."""
    for py in sorted(glob.glob("/root/.pyenv/versions/3.%d.*/bin/python3.%d" % (minor, minor))):
        lib = T.interpreter_binary(py)
        if lib and "libpython" in os.path.basename(lib):
            return py, lib
    return None


def patch_free_threaded(path):
    """Set _Py_DebugOffsets.free_threaded (8 bytes after cookie and version)
    to 1 in every copy of the struct in the file (_PyRuntime's initialiser
    and the one CPython keeps to reset it).  Returns how many."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    n = 0
    for m in re.finditer(rb"xdebugpy", data):
        at = m.start()
        version = int.from_bytes(data[at + 8:at + 16], "little")
        ft = int.from_bytes(data[at + 16:at + 24], "little")
        if version >> 16 == 0x030d and ft == 0:
            data[at + 16:at + 24] = (1).to_bytes(8, "little")
            n += 1
    with open(path, "wb") as f:
        f.write(data)
    return n


def patch_build_id(path):
    """Give the file a build-id no built-in table has (flip its bytes)."""
    notes = subprocess.run(["readelf", "-n", path], stdout=subprocess.PIPE,
                           universal_newlines=True, check=True).stdout
    bid = bytes.fromhex(re.search(r"Build ID:\s*([0-9a-f]+)", notes).group(1))
    with open(path, "rb") as f:
        data = bytearray(f.read())
    at = data.find(bid)
    if at < 0:
        return False
    data[at:at + len(bid)] = bytes(b ^ 0x5a for b in bid)
    with open(path, "wb") as f:
        f.write(data)
    return True


def run_fixture(py, env):
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return T.Fixture(py, threads=2)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def maps_have(pid, path):
    with open("/proc/%d/maps" % pid) as f:
        return path in f.read()


def check_refused(chk, args, fx, label, why):
    for cmd in (["stacks"], ["info"], ["census", "--top", "1"]):
        res = T.pyxray(args.pyxray, *(cmd + [str(fx.pid)]))
        chk.ok(res.rc == 6 and FT_DETAIL in res.err and why in res.err and
               not T.one_line_stderr(res),
               "%s: %s refuses: free-threaded, %s (exit 6)" % (label, cmd[0], why),
               res.describe())
    chk.ok(not T.wait_all_running(fx.pid, 1.0), "%s: no thread left stopped" % label)


def free_threaded(chk, args):
    found = pyenv_python(13)
    if not found:
        T.log("note: no pyenv CPython 3.13 with a libpython: free-threaded fakes skipped")
        return False
    py, lib = found
    d = T.tmpdir()

    # 1. _Py_DebugOffsets.free_threaded = 1, under the library's own name
    libdir = os.path.join(d, "ft-offsets")
    os.makedirs(libdir)
    patched = os.path.join(libdir, os.path.basename(lib))
    shutil.copy(lib, patched)
    n = patch_free_threaded(patched)
    if chk.ok(n >= 1, "the copy's _Py_DebugOffsets patched (%d)" % n):
        fx = run_fixture(py, {"LD_LIBRARY_PATH": libdir})
        try:
            chk.ok(maps_have(fx.pid, patched), "the target runs the patched copy")
            check_refused(chk, args, fx, "debug offsets", "free_threaded")
        finally:
            fx.stop()

    # 2. the free-threaded ABI flag in the name (SONAME still libpython3.13)
    libdir = os.path.join(d, "ft-name")
    os.makedirs(libdir)
    renamed = os.path.join(libdir, "libpython3.13t.so.1.0")
    shutil.copy(lib, renamed)
    fx = run_fixture(py, {"LD_PRELOAD": renamed})
    try:
        chk.ok(maps_have(fx.pid, renamed), "the target runs libpython3.13t.so.1.0")
        check_refused(chk, args, fx, "name", "'t'")
    finally:
        fx.stop()
    return True


def unknown_version(chk, args, minor):
    found = pyenv_python(minor)
    if not found:
        return False
    py, lib = found
    version = T.python_version(py)
    d = T.tmpdir()
    anon = os.path.join(d, "libpython-anon.so")
    subprocess.run(["strip", "--strip-debug", "-o", anon, lib], check=True)
    if not chk.ok(patch_build_id(anon), "3.%d: the copy's build-id changed" % minor):
        return True
    fx = run_fixture(py, {"LD_PRELOAD": anon})
    label = "3.%d as an unknown version" % minor
    try:
        chk.ok(maps_have(fx.pid, anon), "%s: the target runs the anonymous copy" % label)
        info = T.pyxray(args.pyxray, "info", fx.pid, "--json")
        if chk.ok(info.rc == 0, "%s: info" % label, info.describe()):
            doc = info.json()
            chk.ok(doc["python_version"] == version,
                   "%s: version %s read from sys.version" % (label, doc["python_version"]))
            chk.ok(doc["layout"] == "table" and
                   ("built-in table 3.%d." % minor) in doc["layout_from"],
                   "%s: the 3.%d table is used (%s)" % (label, minor, doc["layout_from"]))
        res = T.pyxray(args.pyxray, "stacks", fx.pid, "--json")
        if chk.ok(res.rc == 0, "%s: stacks" % label, res.describe()):
            L.compare(chk, fx, res.json(), label)
        chk.ok(not T.wait_all_running(fx.pid, 1.0), "%s: no thread left stopped" % label)
    finally:
        fx.stop()
    return True


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    for tool in ("strip", "readelf"):
        if shutil.which(tool) is None:
            T.log("SKIP: %s not found (binutils)" % tool)
            return T.SKIP
    chk = T.Checker("abi")
    ran = free_threaded(chk, args)
    for minor in (8, 9, 10):
        ran |= unknown_version(chk, args, minor)
    if not ran:
        T.log("SKIP: no pyenv CPython 3.8-3.10 or 3.13 with a libpython here")
        return T.SKIP
    return chk.finish()


if __name__ == "__main__":
    sys.exit(main())
