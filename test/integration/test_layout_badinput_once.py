"""Layout bad input: a built-in table that does not fit the process fails
validation (exit 14) instead of printing garbage; a version with no table
says so and how to supply debug info (exit 6); an unknown --layout is a usage
error (exit 2).  Each is one line on stderr.  PYX_TABLE_VERSION is pyxray's
test hook that forces another version's table: it exists only in test builds
(-DPYX_TEST_HOOKS=ON), never in a release binary.

  test_layout_badinput_once.py --pyxray BIN --python PY    exit 0, 1 or 77
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402


def test_hooks_built(pyxray):
    """Whether the build was configured with PYX_TEST_HOOKS (its CMake
    cache, beside the binary or in PYX_BUILD_DIR); None if unknown."""
    for d in (os.environ.get("PYX_BUILD_DIR"), os.path.dirname(os.path.abspath(pyxray))):
        try:
            with open(os.path.join(d or "", "CMakeCache.txt")) as f:
                for line in f:
                    if line.startswith("PYX_TEST_HOOKS:"):
                        return line.strip().split("=", 1)[1].upper() in ("ON", "1", "TRUE", "YES")
        except OSError:
            pass
    return None


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    hooks = test_hooks_built(args.pyxray)
    with open(args.pyxray, "rb") as f:
        has_hook = b"PYX_TABLE_VERSION" in f.read()
    if hooks is False:
        chk = T.Checker("layout bad input")
        chk.ok(not has_hook, "a build without PYX_TEST_HOOKS has no PYX_TABLE_VERSION hook")
        T.log("note: not a test build: the hook's checks need -DPYX_TEST_HOOKS=ON")
        return chk.finish()
    py = T.find_dwarf_python(preferred=("3.12", "3.13", "3.11"))
    if py is None:
        T.log("SKIP: no CPython 3.11-3.13 with DWARF on this machine")
        return T.SKIP
    version = T.python_version(py)
    other = "3.11" if not version.startswith("3.11") else "3.12"
    chk = T.Checker("layout bad input")
    fx = T.Fixture(py, threads=2)
    try:
        os.environ["PYX_TABLE_VERSION"] = other
        res = T.pyxray(args.pyxray, "stacks", fx.pid, "--layout", "table")
        chk.ok(res.rc == 14 and not T.one_line_stderr(res) and "layout" in res.err,
               "the %s table on a %s process fails validation (exit 14)" % (other, version),
               res.describe())
        os.environ["PYX_TABLE_VERSION"] = "3.99"
        res = T.pyxray(args.pyxray, "stacks", fx.pid, "--layout", "table")
        chk.ok(res.rc == 6 and not T.one_line_stderr(res) and "debug symbols" in res.err,
               "a version without a table says how to supply debug info (exit 6)",
               res.describe())
        del os.environ["PYX_TABLE_VERSION"]
        res = T.pyxray(args.pyxray, "stacks", fx.pid, "--layout", "guess")
        chk.ok(res.rc == 2 and not T.one_line_stderr(res),
               "an unknown --layout is a usage error (exit 2)", res.describe())
        chk.ok(not T.wait_all_running(fx.pid, 1.0), "no thread of the target left stopped")
    finally:
        os.environ.pop("PYX_TABLE_VERSION", None)
        fx.stop()
    return chk.finish()


if __name__ == "__main__":
    sys.exit(main())
