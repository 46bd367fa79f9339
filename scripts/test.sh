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
