#!/usr/bin/env python3
"""Check lib/linetable.c against one CPython's own line numbers.

Usage: test_linetable.py --pyxray BIN --python PY

Runs fixtures/linetable_corpus.py with PY (its PyCode_Addr2Line and
co_lines() answers for a few thousand code objects) and feeds the corpus to
pyx-linetable-check ($PYX_BUILD_DIR/test/pyx-linetable-check, or
$PYX_LINETABLE_CHECK for manual runs).  Needs no DWARF, so it runs on
stripped interpreters too.  Exit 0 pass, 77 skip (unsupported version),
anything else fail.  PY may be a test bed spec (root:DIR:NAME:MODE,
docs/test-bed.md): the corpus is then made by the root's interpreter, in a
container or through the root's loader.
"""
import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pyxtest as T  # noqa: E402

SKIP = 77


def source_dir():
    return os.environ.get("PYX_SOURCE_DIR") or \
        os.path.normpath(os.path.join(HERE, "..", ".."))


def checker_path():
    override = os.environ.get("PYX_LINETABLE_CHECK")
    if override:
        return override
    build = os.environ.get("PYX_BUILD_DIR")
    if not build:
        sys.exit("FAIL: neither PYX_BUILD_DIR nor PYX_LINETABLE_CHECK set")
    return os.path.join(build, "test", "pyx-linetable-check")


def python_version(py):
    if py.startswith("root:"):
        return T.python_version(py)  # skips, named, without a root
    try:
        out = subprocess.run(
            [py, "-E", "-s", "-c",
             "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            universal_newlines=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        sys.exit("FAIL: cannot run %s: %s" % (py, e))
    if out.returncode != 0:
        sys.exit("FAIL: %s exited %d: %s" % (py, out.returncode,
                                             out.stderr.strip()))
    return out.stdout.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pyxray", required=True)  # unused: pure decoding
    ap.add_argument("--python", required=True)
    args = ap.parse_args()

    version = python_version(args.python)
    if not T.supported(T.vtuple(version)):
        print("SKIP: %s (%s): %s" % (args.python, version, T.UNSUPPORTED))
        return SKIP

    rec = T.Spec(args.python).recorded() if args.python.startswith("root:") \
        else None
    if rec and rec.get("py_debug"):
        # The corpus probes PyCode_Addr2Line out of range on purpose,
        # which a Py_DEBUG build asserts on; its line tables are the
        # release build's (the same compiler), tested there.
        print("SKIP: %s (%s): Py_DEBUG build: the corpus's out-of-range "
              "probes abort it; its line table format is the release "
              "build's" % (args.python, version))
        return SKIP

    checker = checker_path()
    if not os.access(checker, os.X_OK):
        print("FAIL: checker %s not built" % checker)
        return 1
    corpus_script = os.path.join(source_dir(), "fixtures",
                                 "linetable_corpus.py")

    # /tmp: what a container-mode interpreter shares with the host
    with tempfile.TemporaryDirectory(prefix="pyx-linetable-",
                                     dir="/tmp") as tmp:
        corpus = os.path.join(tmp, "corpus.txt")
        spec = T.Spec(args.python)
        # -I: no user site or PYTHON* variables; -B: leave no .pyc behind.
        # A root's interpreter on the host needs PYTHONHOME (its env()
        # drops every other PYTHON* variable): -s -B there.
        flags = ["-s", "-B"] if spec.kind == "root" else ["-I", "-B"]
        # T.run starts a spec in its mode (the fixture path translated
        # for a container) and kills its process group on a timeout.
        gen = T.run([spec] + flags + [corpus_script, corpus], timeout=240)
        sys.stdout.write(gen.out)
        if gen.rc != 0:
            sys.stdout.write(gen.err)
            print("FAIL: corpus script exited %s with %s"
                  % (gen.rc, args.python))
            return 1
        chk = subprocess.run([checker, corpus], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT,
                             universal_newlines=True, timeout=240)
        sys.stdout.write(chk.stdout)
        if chk.returncode != 0:
            print("FAIL: %s (%s): checker exited %d"
                  % (args.python, version, chk.returncode))
            return 1
    print("PASS: %s (%s)" % (args.python, version))
    return 0


if __name__ == "__main__":
    sys.exit(main())
