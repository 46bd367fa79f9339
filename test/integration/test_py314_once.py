#!/usr/bin/env python3
"""CPython 3.14 and 3.15 (issue 10): Debian unstable's python3.14 and python3.15
from the test bed root (scripts/mkroot.sh, docs/test-bed.md), each in a
container (its debug file found by build-id in the target's root: DWARF) and
through the root's loader on the host (no debug file anywhere: the target's
_Py_DebugOffsets and the built-in tables).  On each, stacks_target.py's own
truth is compared with:

  - stacks --json: threads, ids (in-namespace ids in a container), names,
    every frame's function, file and line; and with --layout debug-offsets
    and --layout table as well as the default;
  - stacks --context 2, and --native (the eval loop and its .cold part merged
    with the Python frames: no unpaired frames);
  - info --json: the layout's source, and in a container the field-by-field
    comparison of _Py_DebugOffsets with the DWARF (no entry differs).

Then: python3.15 presented as 3.16 (PYX_TEST_PRESENT_VERSION, test builds
only): stacks work from its _Py_DebugOffsets alone, census refuses; and the
Py_DEBUG build python3.14d (bigger runtime and interpreter structs): through
its DWARF, and through the release build's table with the struct sizes its
_Py_DebugOffsets publish (the fields they do not vouch for left out).

  test_py314_once.py --pyxray BIN [--python ignored]   exit 0/1/77
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402
from test_stacks import frame_diff  # noqa: E402

ROOT = os.environ.get("PYX_ROOT_DIR", "/var/cache/pyxray/roots/sid")


def spec(name, mode):
    return "root:%s:%s:%s" % (ROOT, name, mode)


def stacks_json(chk, pyxray, fx, what, *args, env=None):
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        res = T.pyxray(pyxray, "stacks", "--json", *(list(args) + [fx.pid]),
                       timeout=60)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    if not chk.ok(res.rc == 0, "%s: stacks --json %s exits 0" % (
            what, " ".join(args)), "      rc %s: %s" % (res.rc, res.err[-600:])):
        return None, res
    try:
        return json.loads(res.out), res
    except ValueError as e:
        chk.fail("%s: stacks --json is JSON" % what, "      %s" % e)
        return None, res


def compare(chk, fx, doc, what, container, names=True):
    """doc's threads against the fixture's truth."""
    truth = fx.truth
    by_id = dict((t.get("thread_id"), t) for t in doc.get("threads") or [])
    chk.ok(doc.get("python_version", "").startswith(
        truth["python_version"].rsplit(".", 1)[0]) or
        doc.get("python_version") == truth["python_version"],
        "%s: python_version %s" % (what, doc.get("python_version")))
    for tt in truth["threads"]:
        label = "%s: thread %s" % (what, tt["name"])
        got = by_id.get(tt["thread_id"])
        if not chk.ok(got is not None, "%s present" % label,
                      "      ids: %s" % sorted(by_id)):
            continue
        # In a container the interpreter knows its threads by the ids of
        # its own PID namespace; pyxray shows both.
        key = "ns_native_thread_id" if container else "native_thread_id"
        chk.ok(got.get(key) == tt["native_thread_id"],
               "%s %s %d" % (label, key, tt["native_thread_id"]),
               "      got %r" % got.get(key))
        if names:
            chk.ok(got.get("name") == tt["name"], "%s named" % label,
                   "      got %r" % got.get("name"))
        spin = truth["spinner_lines"] if tt["role"] == "spinner" else None
        diff = frame_diff(tt["frames"], got.get("frames") or [], spin)
        chk.ok(not diff, "%s: %d frames match" % (label, len(tt["frames"])),
               "\n".join(diff))


def python_frames(t):
    return [f for f in t.get("frames") or [] if not f.get("native")]


def check_native(chk, fx, doc, what, container):
    by_id = dict((t.get("thread_id"), t) for t in doc.get("threads") or [])
    for tt in fx.truth["threads"]:
        got = by_id.get(tt["thread_id"])
        label = "%s --native: thread %s" % (what, tt["name"])
        if not chk.ok(got is not None, "%s present" % label):
            continue
        chk.ok(got.get("native_error") is None,
               "%s: every eval-loop frame paired with its Python frames"
               % label, "      native_error: %r" % got.get("native_error"))
        spin = fx.truth["spinner_lines"] if tt["role"] == "spinner" else None
        diff = frame_diff(tt["frames"], python_frames(got), spin)
        chk.ok(not diff, "%s: Python frames match" % label, "\n".join(diff))
        chk.ok(any(f.get("native") for f in got.get("frames") or []),
               "%s: native frames shown" % label)


def check_release(chk, pyxray, name, mode):
    container = mode == "container"
    what = "%s %s" % (name, mode)
    fx = T.Fixture(spec(name, mode), threads=4)
    try:
        doc, _ = stacks_json(chk, pyxray, fx, what)
        if doc:
            compare(chk, fx, doc, what, container)
        for layout in ("debug-offsets", "table"):
            doc, _ = stacks_json(chk, pyxray, fx, what, "--layout", layout)
            if doc:
                # debug offsets alone carry no dict internals: no names
                compare(chk, fx, doc, "%s --layout %s" % (what, layout),
                        container, names=layout != "debug-offsets")
        doc, _ = stacks_json(chk, pyxray, fx, what, "--native")
        if doc:
            check_native(chk, fx, doc, what, container)
        res = T.pyxray(pyxray, "stacks", "--context", "2", fx.pid, timeout=60)
        chk.ok(res.rc == 0 and "# PARK" in res.out,
               "%s: stacks --context 2 shows the source" % what,
               "      rc %s: %s" % (res.rc, (res.err or res.out)[-400:]))
        res = T.pyxray(pyxray, "info", "--json", fx.pid, timeout=60)
        try:
            info = json.loads(res.out)
        except ValueError:
            info = {}
        chk.ok(res.rc == 0 and info, "%s: info --json" % what,
               "      rc %s: %s" % (res.rc, res.err[-400:]))
        if container:
            chk.ok(info.get("layout") == "dwarf" and
                   info.get("debug_offsets_checked", 0) >= 50 and
                   info.get("debug_offsets_mismatches") == 0,
                   "%s: DWARF from the root's debug file, and every one of "
                   "the %s _Py_DebugOffsets entries equal to it" % (
                       what, info.get("debug_offsets_checked")),
                   "      %s" % {k: info.get(k) for k in (
                       "layout", "layout_from", "debug_offsets_checked",
                       "debug_offsets_mismatches")})
        else:
            chk.ok(info.get("layout") == "table",
                   "%s: no debug file: the built-in table" % what,
                   "      %s" % {k: info.get(k) for k in (
                       "layout", "layout_from")})
    finally:
        T.kill_child(fx.proc)


def check_newer(chk, pyxray):
    what = "python3.15 presented as 3.16"
    env = {"PYX_TEST_PRESENT_VERSION": "3.16"}
    fx = T.Fixture(spec("python3.15", "hostld"), threads=2)
    try:
        doc, res = stacks_json(chk, pyxray, fx, what, env=env)
        if doc:
            chk.ok(doc.get("python_version", "").startswith("3.16."),
                   "%s: read as 3.16" % what,
                   "      %r" % doc.get("python_version"))
            # names come from threading's dict: internals the debug
            # offsets do not carry
            fx.truth["python_version"] = doc.get("python_version")
            compare(chk, fx, doc, what, False, names=False)
        saved = dict(os.environ)
        os.environ.update(env)
        try:
            res = T.pyxray(pyxray, "census", fx.pid, timeout=60)
            tab = T.pyxray(pyxray, "stacks", "--layout", "table", fx.pid,
                           timeout=60)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        chk.ok(res.rc not in (0, None) and "_Py_DebugOffsets" in res.err,
               "%s: census refuses, naming the debug offsets" % what,
               "      rc %s: %s" % (res.rc, res.err[-400:]))
        chk.ok(tab.rc == T.EXIT["UNSUPPORTED_VERSION"] and
               "newer than pyxray knows" in tab.err,
               "%s: --layout table refused: no table for a newer version"
               % what, "      rc %s: %s" % (tab.rc, tab.err[-400:]))
    finally:
        T.kill_child(fx.proc)


def check_debug_build(chk, pyxray):
    what = "python3.14d hostld"
    fx = T.Fixture(spec("python3.14d", "hostld"), threads=2)
    try:
        doc, _ = stacks_json(chk, pyxray, fx, what)
        if doc:
            compare(chk, fx, doc, what + " (its DWARF)", False)
        doc, _ = stacks_json(chk, pyxray, fx, what, "--layout", "table")
        if doc:
            compare(chk, fx, doc, what + " --layout table", False)
        res = T.pyxray(pyxray, "info", "-v", "--layout", "table", fx.pid,
                       timeout=60)
        chk.ok(res.rc == 0 and "_PyRuntimeState is 332632 bytes in this "
               "build, 316616 in the built-in table" in res.err,
               "%s: the release table's runtime fields are not used for the "
               "Py_DEBUG build (sizes from its _Py_DebugOffsets)" % what,
               "      rc %s: %s" % (res.rc, res.err[-600:]))
    finally:
        T.kill_child(fx.proc)


def hooks_built(pyxray):
    """Whether the build was configured with PYX_TEST_HOOKS (its CMake
    cache, beside the binary or in PYX_BUILD_DIR)."""
    for d in (os.environ.get("PYX_BUILD_DIR"),
              os.path.dirname(os.path.abspath(pyxray))):
        try:
            with open(os.path.join(d or "", "CMakeCache.txt")) as f:
                for line in f:
                    if line.startswith("PYX_TEST_HOOKS:"):
                        return line.strip().split("=", 1)[1].upper() in (
                            "ON", "1", "TRUE", "YES")
        except OSError:
            pass
    return False


def main():
    args = T.parse_args(__doc__)
    T.require_pyxray(args.pyxray)
    for name in ("python3.14", "python3.15", "python3.14d"):
        problem = T.Spec(spec(name, "hostld")).root_problem()
        if problem:
            print("SKIP: no test root: %s" % problem)
            return T.SKIP
    chk = T.Checker("3.14/3.15 on the test bed root %s" % ROOT)
    for name in ("python3.14", "python3.15"):
        for mode in ("container", "hostld"):
            check_release(chk, args.pyxray, name, mode)
    if hooks_built(args.pyxray):
        check_newer(chk, args.pyxray)
    else:
        T.log("note: not a test build (-DPYX_TEST_HOOKS=ON): the 3.16 "
              "presentation is not tested")
    check_debug_build(chk, args.pyxray)
    return chk.finish()


if __name__ == "__main__":
    sys.exit(main())
