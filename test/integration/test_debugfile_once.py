"""Separate debug info: a stripped copy of a pyenv libpython, its DWARF in a
debug file placed by build-id under a temporary debug directory.  pyxray
must find it there with --debug-dir (and say so), give stacks that match the
truth from it, and without it refuse --layout dwarf naming where it looked.

  test_debugfile_once.py --pyxray BIN --python PY     exit 0, 1 or 77
"""

import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402
import test_layouts as L  # noqa: E402


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    py = T.find_dwarf_python(preferred=("3.12", "3.11", "3.10", "3.13", "3.9", "3.8"))
    if py is None:
        T.log("SKIP: no CPython 3.8-3.13 with DWARF on this machine")
        return T.SKIP
    lib = T.interpreter_binary(py)
    if "libpython" not in os.path.basename(lib):
        T.log("SKIP: %s is a static build; this test strips a libpython" % py)
        return T.SKIP
    for tool in ("objcopy", "strip", "readelf"):
        if shutil.which(tool) is None:
            T.log("SKIP: %s: %s not found (binutils)" % (py, tool))
            return T.SKIP
    d = T.tmpdir()
    libdir = os.path.join(d, "lib")
    os.makedirs(libdir)
    stripped = os.path.join(libdir, os.path.basename(lib))
    notes = subprocess.run(["readelf", "-n", lib], stdout=subprocess.PIPE,
                           universal_newlines=True, check=True).stdout
    bid = re.search(r"Build ID:\s*([0-9a-f]+)", notes).group(1)
    debugdir = os.path.join(d, "debug")
    dbg = os.path.join(debugdir, ".build-id", bid[:2], bid[2:] + ".debug")
    os.makedirs(os.path.dirname(dbg))
    subprocess.run(["objcopy", "--only-keep-debug", lib, dbg], check=True)
    subprocess.run(["strip", "--strip-debug", "-o", stripped, lib], check=True)

    chk = T.Checker("debug file")
    chk.ok(not T._has_debug_info(stripped), "the copy has no .debug_info")
    os.environ["LD_LIBRARY_PATH"] = libdir
    try:
        fx = T.Fixture(py, threads=3)
    finally:
        del os.environ["LD_LIBRARY_PATH"]
    try:
        with open("/proc/%d/maps" % fx.pid) as f:
            chk.ok(stripped in f.read(), "the target runs the stripped copy")
        info = T.pyxray(args.pyxray, "info", fx.pid, "--json", "--debug-dir", debugdir)
        if chk.ok(info.rc == 0, "info --debug-dir", info.describe()):
            doc = info.json()
            chk.ok(doc["layout"] == "dwarf" and debugdir in doc["layout_from"],
                   "the layout comes from the debug file (%s)" % doc["layout_from"])
        res = T.pyxray(args.pyxray, "stacks", fx.pid, "--json", "--layout", "dwarf",
                       "--debug-dir", debugdir)
        if chk.ok(res.rc == 0, "stacks --layout dwarf --debug-dir", res.describe()):
            L.compare(chk, fx, res.json(), "debug file")
        res = T.pyxray(args.pyxray, "stacks", fx.pid, "--layout", "dwarf")
        chk.ok(res.rc == 7 and not T.one_line_stderr(res) and "searched" in res.err,
               "without --debug-dir, --layout dwarf refuses (exit 7) saying where it looked",
               res.describe())
    finally:
        fx.stop()
    return chk.finish()


if __name__ == "__main__":
    sys.exit(main())
