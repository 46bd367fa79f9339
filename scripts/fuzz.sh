#!/usr/bin/env bash
# Build and run the libFuzzer targets over synthetic images (docs/fuzzing.md).
#
#   scripts/fuzz.sh --smoke            build, replay every seed and every
#                                      regression once, then fuzz 60 s (CI)
#   scripts/fuzz.sh --runs N [--jobs J] the long run: N executions in all
#   options: --time S (smoke: seconds of fuzzing), --build DIR (build-fuzz)
#
# The build is CC=clang with -DPYX_FUZZ=ON: the library instrumented with
# -fsanitize=fuzzer-no-link,address,undefined, the target linked with
# -fsanitize=fuzzer,address,undefined.  Seeds: test/fuzz/corpus (read only);
# what the fuzzer finds goes to BUILD/corpus; a crash input to BUILD/crashes.
# Exit 0 with no finding; 1 on a crash, a leak, a timeout or a build error.
# The last line is a summary.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir="$top/build-fuzz"
mode=""
runs=0
jobs=1
smoke_time=60
target=fuzz_readers

usage() {
	sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case "$1" in
	--smoke) mode=smoke ;;
	--runs) mode=runs; runs=${2:?}; shift ;;
	--runs=*) mode=runs; runs=${1#*=} ;;
	--jobs) jobs=${2:?}; shift ;;
	--jobs=*) jobs=${1#*=} ;;
	--time) smoke_time=${2:?}; shift ;;
	--time=*) smoke_time=${1#*=} ;;
	--build) dir=${2:?}; shift ;;
	--build=*) dir=${1#*=} ;;
	-h|--help) usage ;;
	*) echo "fuzz.sh: unknown argument '$1'" >&2; usage ;;
	esac
	shift
done
[ -n "$mode" ] || usage
case "$runs$jobs$smoke_time" in *[!0-9]*) echo "fuzz.sh: numbers only" >&2; exit 2 ;; esac
[ "$jobs" -ge 1 ] || jobs=1

if ! command -v clang > /dev/null 2>&1; then
	echo "fuzz: FAILED: clang not found (scripts/deps.sh installs it)"
	exit 1
fi

echo "fuzz: building in $dir"
mkdir -p "$dir"
blog="$dir/fuzz-build.log"
if ! CC=clang cmake -S "$top" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DPYX_FUZZ=ON -DPYX_TESTS=OFF -DPYX_WERROR=ON > "$blog" 2>&1 ||
   ! cmake --build "$dir" -j"$(nproc)" --target "$target" >> "$blog" 2>&1; then
	tail -n 30 "$blog"
	echo "fuzz: FAILED: build (log: $blog)"
	exit 1
fi
bin="$dir/test/fuzz/$target"
crashes="$dir/crashes"
work="$dir/corpus"
mkdir -p "$crashes" "$work"

mapfile -t seeds < <(find "$top/test/fuzz/corpus" -type f -name '*.img' | sort)
mapfile -t regressions < <(find "$top/test/fuzz/regressions" -type f ! -name '*.md' 2>/dev/null | sort)
seed_dirs=()
for d in "$top"/test/fuzz/corpus/*/; do
	[ -d "$d" ] && seed_dirs+=("$d")
done
if [ "${#seeds[@]}" -eq 0 ]; then
	echo "fuzz: FAILED: no seeds in test/fuzz/corpus"
	exit 1
fi

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
opts=(-timeout=25 -rss_limit_mb=2048 -print_final_stats=1
      "-artifact_prefix=$crashes/")

# The figures of a libFuzzer log: executions, exec/s, cov, ft.
stats() {
	local log=$1 n rate cov ft
	n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | awk '{s += $1} END {print s + 0}')
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | awk '{s += $1} END {print s + 0}')
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
	ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
	echo "$n executions, $rate exec/s, cov: ${cov:-?} ft: ${ft:-?}"
}

crash_report() {
	local log=$1
	grep -E 'ERROR: |runtime error|SUMMARY|Test unit written|#[0-9]+ 0x.* in ' "$log" | head -n 40
}

if [ "$mode" = smoke ]; then
	log="$dir/smoke.log"
	echo "fuzz: replaying ${#seeds[@]} seeds and ${#regressions[@]} regressions"
	if ! "$bin" "${opts[@]}" "${seeds[@]}" "${regressions[@]}" > "$log" 2>&1; then
		crash_report "$log"
		echo "fuzz smoke: FAILED: a seed or a regression crashes (log: $log)"
		exit 1
	fi
	echo "fuzz: fuzzing for $smoke_time s"
	log="$dir/smoke-fuzz.log"
	if ! "$bin" "${opts[@]}" -max_total_time="$smoke_time" "$work" \
		"${seed_dirs[@]}" > "$log" 2>&1; then
		crash_report "$log"
		echo "fuzz smoke: FAILED: crash after $(stats "$log") (input in $crashes, log: $log)"
		exit 1
	fi
	echo "fuzz smoke: OK: ${#seeds[@]} seeds and ${#regressions[@]} regressions replayed;" \
		"$smoke_time s of fuzzing: $(stats "$log"), crashes: 0"
	exit 0
fi

# The long run.
[ "$runs" -gt 0 ] || { echo "fuzz.sh: --runs N, N > 0" >&2; exit 2; }
logdir="$dir/logs"
mkdir -p "$logdir"
start=$(date +%s)
echo "fuzz: $runs executions, $jobs job(s), $(date -u +%FT%TZ); logs in $logdir"
rc=0
if [ "$jobs" -eq 1 ]; then
	log="$logdir/run.log"
	# Progress goes to our output as well as to the log.
	"$bin" "${opts[@]}" -runs="$runs" "$work" "${seed_dirs[@]}" 2>&1 |
		tee "$log" | grep --line-buffered -E '^#[0-9]+[[:space:]]+pulse|^Done|ERROR|runtime error' || true
	rc=${PIPESTATUS[0]}
	logs=("$log")
else
	per=$(( (runs + jobs - 1) / jobs ))
	(cd "$logdir" && rm -f fuzz-*.log &&
	 "$bin" "${opts[@]}" -runs="$per" -jobs="$jobs" -workers="$jobs" \
		"$work" "${seed_dirs[@]}") || rc=$?
	logs=("$logdir"/fuzz-*.log)
fi
cat "${logs[@]}" > "$logdir/all.log"
secs=$(( $(date +%s) - start ))
ncrash=$(find "$crashes" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
if [ "$rc" -ne 0 ] || [ "$ncrash" -ne 0 ]; then
	crash_report "$logdir/all.log"
	echo "fuzz: FAILED: $(stats "$logdir/all.log") in $secs s; crashes: $ncrash (inputs in $crashes)"
	exit 1
fi
echo "fuzz: OK: $(stats "$logdir/all.log") in $secs s; crashes: 0"
