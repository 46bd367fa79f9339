#!/usr/bin/env bash
# The whole test suite: install what is missing, build with -Werror under
# AddressSanitizer + UndefinedBehaviorSanitizer, run every unit and
# integration test against every CPython on the machine.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"
dir="$top/build-sanitize"
"$top/scripts/build.sh" "$dir" -DPYX_SANITIZE=ON -DPYX_WERROR=ON -DPYX_TEST_HOOKS=ON
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$dir"
ctest --output-on-failure --timeout 600 "$@"
