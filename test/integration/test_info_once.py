"""pyxray info: how the layout was found, and what the target's own
_Py_DebugOffsets say (issue 10).

  test_info_once.py --pyxray BIN --python PY   exit 0 pass, 1 fail, 77 skip

Parts (each skipped by name when its interpreter is missing; the test skips
when all are):
  * pyenv 3.13 (full DWARF in libpython): the layout line names libpython
    (not the /proc/PID/map_files path pyxray read it through); the text says
    "_Py_DebugOffsets  3.13 format, 3.13.N, validated; K entries compared
    with the DWARF, 0 differ"; --json has debug_offsets_valid,
    debug_offsets_version, debug_offsets_format, debug_offsets_used,
    debug_offsets_diff [] and newer false; nothing on stderr;
  * the test bed's python3.14 in hostld mode (no debug file: the built-in
    table with the debug offsets over it): "K entries from
    _Py_DebugOffsets", JSON debug_offsets_used K > 0, layout "table";
  * the test bed's python3.15 presented as 3.16 (PYX_TEST_PRESENT_VERSION,
    test builds only): `stacks` works and prints the one-line "newer than
    pyxray knows" warning on stderr without -v, once with -v too; census and
    refs refuse with exit 6 naming the debug offsets (not a layout error,
    exit 14); info shows and --json says newer: true with the warning;
  * a binary whose path holds ESC and CSI (U+009B): info's text escapes it,
    its JSON gives it back exactly.
"""

import glob
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402

ROOT = os.environ.get("PYX_ROOT_DIR", "/var/cache/pyxray/roots/sid")


def info(pyxray, pid, *extra, **kw):
    return T.pyxray(pyxray, "info", pid, *extra, timeout=60, **kw)


def info_json(chk, pyxray, pid, what, *extra):
    res = info(pyxray, pid, "--json", *extra)
    if not chk.ok(res.rc == 0, "%s: info --json exits 0" % what,
                  "      " + res.describe()):
        return None, res
    try:
        return res.json(), res
    except ValueError as e:
        chk.fail("%s: info --json is one JSON object" % what,
                 "      %s\n      %s" % (e, res.describe()))
        return None, res


def line_of(text, label):
    for line in text.splitlines():
        if line.startswith("  " + label):
            return line
    return None


def with_env(env, fn):
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return fn()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def pyenv_313():
    found = sorted(glob.glob("/root/.pyenv/versions/3.13.*/bin/python3.13"))
    return found[-1] if found else None


def check_dwarf(chk, pyxray, py):
    what = "3.13 with DWARF"
    fx = T.Fixture(py, threads=1)
    try:
        version = fx.truth["python_version"]
        binary = T.interpreter_binary(py)
        res = info(pyxray, fx.pid)
        if not chk.ok(res.rc == 0, "%s: info exits 0" % what,
                      "      " + res.describe()):
            return
        chk.ok(res.err == "", "%s: nothing on stderr" % what,
               "      %r" % res.err)
        lay = line_of(res.out, "layout") or ""
        chk.ok(lay.startswith("  layout          dwarf") and binary in lay
               and "/map_files/" not in lay,
               "%s: the layout line names the binary %s" % (what, binary),
               "      %r" % lay)
        do = line_of(res.out, "_Py_DebugOffsets") or ""
        m = re.match(r"  _Py_DebugOffsets  3\.13 format, (\S+), validated; "
                     r"(\d+) entries compared with the DWARF, 0 differ$", do)
        chk.ok(m is not None and m.group(1) == version and
               int(m.group(2)) >= 40,
               "%s: '_Py_DebugOffsets  3.13 format, %s, validated; N entries "
               "compared with the DWARF, 0 differ'" % (what, version),
               "      %r" % do)
        doc, _ = info_json(chk, pyxray, fx.pid, what)
        if doc is None:
            return
        got = {k: doc.get(k) for k in (
            "layout", "layout_from", "debug_offsets_valid",
            "debug_offsets_version", "debug_offsets_format",
            "debug_offsets_used", "debug_offsets_diff", "newer", "warning",
            "debug_offsets_checked", "debug_offsets_mismatches")}
        want = {"layout": "dwarf", "layout_from": binary,
                "debug_offsets_valid": True,
                "debug_offsets_version": version,
                "debug_offsets_format": "3.13", "debug_offsets_used": 0,
                "debug_offsets_diff": [], "newer": False, "warning": None,
                "debug_offsets_mismatches": 0}
        bad = {k: (got[k], v) for k, v in want.items() if got[k] != v}
        chk.ok(not bad and isinstance(got["debug_offsets_checked"], int) and
               got["debug_offsets_checked"] >= 40,
               "%s: --json debug offsets keys (compared, none differ; the "
               "layout from the binary)" % what,
               "      (got, want): %s\n      checked %r" % (
                   bad, got["debug_offsets_checked"]))
    finally:
        fx.stop()


def check_table(chk, pyxray, spec):
    what = "python3.14 hostld"
    fx = T.Fixture(spec, threads=1)
    try:
        version = fx.truth["python_version"]
        res = info(pyxray, fx.pid)
        if not chk.ok(res.rc == 0, "%s: info exits 0" % what,
                      "      " + res.describe()):
            return
        lay = line_of(res.out, "layout") or ""
        chk.ok(lay.startswith("  layout          table"),
               "%s: the layout is the built-in table" % what, "      %r" % lay)
        do = line_of(res.out, "_Py_DebugOffsets") or ""
        m = re.match(r"  _Py_DebugOffsets  3\.14 format, (\S+), validated; "
                     r"(\d+) entries from _Py_DebugOffsets$", do)
        chk.ok(m is not None and m.group(1) == version and
               int(m.group(2)) > 0,
               "%s: '_Py_DebugOffsets  3.14 format, %s, validated; N "
               "entries from _Py_DebugOffsets'" % (what, version),
               "      %r" % do)
        doc, _ = info_json(chk, pyxray, fx.pid, what)
        if doc is None:
            return
        chk.ok(doc.get("layout") == "table" and
               doc.get("debug_offsets_valid") is True and
               doc.get("debug_offsets_format") == "3.14" and
               isinstance(doc.get("debug_offsets_used"), int) and
               doc["debug_offsets_used"] > 0 and
               doc.get("debug_offsets_checked") == 0 and
               doc.get("debug_offsets_diff") == [] and
               doc.get("newer") is False,
               "%s: --json: table, %s entries from the debug offsets, none "
               "compared (no DWARF)" % (what, doc.get("debug_offsets_used")),
               "      %s" % {k: v for k, v in doc.items()
                             if k.startswith(("debug", "layout", "newer"))})
    finally:
        fx.stop()


def warning_lines(err):
    return [l for l in err.splitlines()
            if l.startswith("pyxray: warning: ") and
            "newer than pyxray knows" in l]


def check_newer(chk, pyxray, spec):
    what = "python3.15 presented as 3.16"
    env = {"PYX_TEST_PRESENT_VERSION": "3.16"}
    fx = T.Fixture(spec, threads=1)
    try:
        def runs():
            return (T.pyxray(pyxray, "stacks", fx.pid, timeout=60),
                    T.pyxray(pyxray, "stacks", "-v", fx.pid, timeout=60),
                    T.pyxray(pyxray, "census", fx.pid, timeout=60),
                    T.pyxray(pyxray, "refs", fx.pid, "--type", "dict",
                             timeout=60),
                    info(pyxray, fx.pid),
                    info(pyxray, fx.pid, "--json"))
        st, stv, ce, rf, it, ij = with_env(env, runs)
        chk.ok(st.rc == 0 and st.out.strip() != "",
               "%s: stacks works" % what, "      " + st.describe())
        chk.ok(len(st.err.splitlines()) == 1 and
               len(warning_lines(st.err)) == 1 and "3.16" in st.err,
               "%s: stacks prints the one-line warning without -v" % what,
               "      stderr %r" % st.err)
        chk.ok(stv.rc == 0 and len(warning_lines(stv.err)) == 1,
               "%s: stacks -v prints it once" % what,
               "      rc %s, %d warning lines: %r" % (
                   stv.rc, len(warning_lines(stv.err)), stv.err[-600:]))
        for name, res in (("census", ce), ("refs", rf)):
            err = [l for l in res.err.splitlines()
                   if l.startswith("pyxray: error: ")]
            chk.ok(res.rc == T.EXIT["UNSUPPORTED_VERSION"] and
                   len(err) == 1 and "_Py_DebugOffsets" in err[0] and
                   ("%s needs more" % name) in err[0] and
                   len(warning_lines(res.err)) == 1,
                   "%s: %s refuses with exit 6 naming the debug offsets "
                   "(after the warning)" % (what, name),
                   "      " + res.describe())
        do = line_of(it.out, "_Py_DebugOffsets") or ""
        chk.ok(it.rc == 0 and "newer than pyxray knows: read as 3.15" in do
               and line_of(it.out, "warning") is not None,
               "%s: info shows it is newer than known" % what,
               "      " + it.describe())
        doc = None
        if ij.rc == 0:
            try:
                doc = ij.json()
            except ValueError:
                pass
        chk.ok(doc is not None and doc.get("newer") is True and
               "newer than pyxray knows" in (doc.get("warning") or "") and
               doc.get("debug_offsets_version", "").startswith("3.16.") and
               doc.get("layout") == "debug-offsets",
               "%s: info --json: newer true, the warning, version 3.16" % what,
               "      " + ij.describe())
    finally:
        fx.stop()


def check_escaped(chk, pyxray):
    """A target binary named with ESC [ and CSI (U+009B)."""
    what = "a binary path with ESC and CSI"
    src = "/usr/bin/python3"
    if not os.path.exists(src):
        T.log("  SKIP part (%s): no %s to copy" % (what, src))
        return False
    d = os.path.join(T.tmpdir(), "esc-\x1b[31m-\u009b-x")
    os.mkdir(d)
    exe = os.path.join(d, "python3")
    shutil.copy2(os.path.realpath(src), exe)
    fx = T.Fixture(exe, threads=1)
    try:
        res = info(pyxray, fx.pid)
        if not chk.ok(res.rc == 0, "%s: info exits 0" % what,
                      "      " + res.describe()):
            return
        raw = [c for c in ("\x1b", "\u009b") if c in res.out]
        chk.ok(not raw and "esc-\\x1b[31m-\\x9b-x" in res.out,
               "%s: info text escapes it (\\x1b, \\x9b)" % what,
               "      raw %r in %r" % (raw, res.out[:400]))
        doc, _ = info_json(chk, pyxray, fx.pid, what)
        if doc is not None:
            chk.ok(doc.get("binary") == exe,
                   "%s: --json gives the path back exactly" % what,
                   "      %r" % doc.get("binary"))
    finally:
        fx.stop()
    return True


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    chk = T.Checker("info")
    ran = 0
    py = pyenv_313()
    if py and T.has_dwarf(py)[0]:
        check_dwarf(chk, args.pyxray, py)
        ran += 1
    else:
        T.log("  SKIP part (3.13 with DWARF): no pyenv python3.13 with DWARF")
    for name, fn in (("python3.14", check_table),
                     ("python3.15", check_newer)):
        spec = T.Spec("root:%s:%s:hostld" % (ROOT, name))
        problem = spec.root_problem()
        if problem:
            T.log("  SKIP part (%s hostld): no test root: %s" % (name,
                                                                problem))
            continue
        if fn is check_newer and not hooks_built(args.pyxray):
            T.log("  SKIP part (%s as 3.16): not a test build "
                  "(-DPYX_TEST_HOOKS=ON): no PYX_TEST_PRESENT_VERSION" % name)
            continue
        fn(chk, args.pyxray, spec)
        ran += 1
    ran += check_escaped(chk, args.pyxray)
    if not ran:
        T.skip(args.python, None, "no interpreter for any part")
    return chk.finish()


def hooks_built(pyxray):
    """Whether pyxray was configured with PYX_TEST_HOOKS (its CMake cache,
    beside the binary or in PYX_BUILD_DIR)."""
    for d in (os.environ.get("PYX_BUILD_DIR"), os.path.dirname(pyxray)):
        if not d:
            continue
        try:
            with open(os.path.join(d, "CMakeCache.txt")) as f:
                for line in f:
                    if line.startswith("PYX_TEST_HOOKS:"):
                        return line.strip().endswith("=ON")
        except OSError:
            continue
    return False


if __name__ == "__main__":
    sys.exit(main())
