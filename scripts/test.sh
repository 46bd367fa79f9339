#!/usr/bin/env bash
# The whole test suite: install what is missing, make (or reuse) the test bed
# root with CPython 3.14/3.15 (scripts/mkroot.sh, docs/test-bed.md), build with
# -Werror under AddressSanitizer + UndefinedBehaviorSanitizer, run every unit
# and integration test against every CPython on the machine and in the root,
# then the fuzz targets' smoke run.  Extra arguments go to ctest.
# PYX_TEST_JOBS sets ctest's parallelism (default: the number of cores),
# PYX_TEST_BUILD_DIR the build directory (default: build-sanitize).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
t_start=$(date +%s)
"$top/scripts/deps.sh"

# The root must exist when CMake configures, for its tests to be registered
# on its interpreters; without it (no network) they are registered all the
# same and each skips, named, with mkroot's reason.
root=${PYX_ROOT_DIR:-/var/cache/pyxray/roots/sid}
export PYX_ROOT_DIR=$root
t0=$(date +%s)
if "$top/scripts/mkroot.sh" > /dev/null; then
	echo "test bed: root $root ready in $(( $(date +%s) - t0 )) s"
else
	echo "test bed: SKIP: no test root: $(cat "$root.failed" 2>/dev/null || echo "mkroot.sh failed")"
fi

# Packaging (docs/packaging.md): the portable binary, built in its cached
# old Debian root, and the fresh root the Debian package is installed into
# by test_package_once.py.  Each is skipped, named, when its root cannot be
# made (offline); the tests then skip the same way.  PYX_SKIP_PORTABLE=1
# skips the portable build (its first run debootstraps and builds elfutils).
t0=$(date +%s)
if [ "${PYX_SKIP_PORTABLE:-0}" = 1 ]; then
	echo "portable binary: SKIP: PYX_SKIP_PORTABLE=1"
elif bin=$("$top/scripts/portable.sh" 2> "${TMPDIR:-/tmp}/pyxray-portable.log"); then
	export PYX_PORTABLE_BIN=$bin
	echo "portable binary: $bin in $(( $(date +%s) - t0 )) s"
else
	prc=$?
	if [ "$prc" = 3 ]; then
		echo "portable binary: SKIP: no build root: $(tail -n1 "${TMPDIR:-/tmp}/pyxray-portable.log")"
	else
		echo "portable binary: FAILED (see below); its test fails"
		tail -n 30 "${TMPDIR:-/tmp}/pyxray-portable.log"
		export PYX_PORTABLE_BIN=/nonexistent/portable-build-failed
	fi
fi
t0=$(date +%s)
if "$top/scripts/portable.sh" --fresh-root > /dev/null 2> "${TMPDIR:-/tmp}/pyxray-fresh.log"; then
	echo "package root: ready in $(( $(date +%s) - t0 )) s"
else
	echo "package root: SKIP: $(tail -n1 "${TMPDIR:-/tmp}/pyxray-fresh.log")"
fi

dir=${PYX_TEST_BUILD_DIR:-"$top/build-sanitize"}
t0=$(date +%s)
"$top/scripts/build.sh" "$dir" -DPYX_SANITIZE=ON -DPYX_WERROR=ON -DPYX_TEST_HOOKS=ON \
	-DPYX_ROOT_DIR="$root"
t_build=$(( $(date +%s) - t0 ))
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
t0=$(date +%s)
rc=0
(cd "$dir" && ctest --output-on-failure --timeout 600 -j "${PYX_TEST_JOBS:-$(nproc)}" "$@") || rc=$?
t_ctest=$(( $(date +%s) - t0 ))

# The fuzz targets' smoke run (scripts/fuzz.sh): libFuzzer needs clang.
t0=$(date +%s)
if [ ! -e "$top/scripts/fuzz.sh" ]; then
	echo "fuzz smoke: SKIP: scripts/fuzz.sh does not exist"
elif ! command -v clang > /dev/null 2>&1; then
	echo "fuzz smoke: SKIP: clang not found (scripts/deps.sh installs it)"
else
	bash "$top/scripts/fuzz.sh" --smoke || { echo "fuzz smoke: FAILED"; rc=1; }
fi
t_fuzz=$(( $(date +%s) - t0 ))
echo "timings: build ${t_build} s, ctest ${t_ctest} s, fuzz smoke ${t_fuzz} s," \
	"total $(( $(date +%s) - t_start )) s"
exit "$rc"
