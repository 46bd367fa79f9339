#!/usr/bin/env bash
# Build and run the libFuzzer targets (docs/fuzzing.md): fuzz_readers over
# synthetic images, fuzz_core over core files.
#
#   scripts/fuzz.sh --smoke            build, replay every seed and every
#                                      regression once, then fuzz 60 s (readers)
#                                      and 30 s (core) (CI)
#   scripts/fuzz.sh --runs N [--jobs J] the long run: N executions of the
#                                      readers, N/20 of the core (--core-runs;
#                                      N with --target core)
#   options: --time S (smoke: seconds of readers fuzzing), --core-time S (30),
#            --core-runs N, --target readers|core|all (all), --build DIR
#
# The build is CC=clang with -DPYX_FUZZ=ON: the library instrumented with
# -fsanitize=fuzzer-no-link,address,undefined, the targets linked with
# -fsanitize=fuzzer,address,undefined.  Seeds: test/fuzz/corpus and
# test/fuzz/corpus-core (read only); what the fuzzer finds goes to
# BUILD/corpus (BUILD/corpus-core); a crash input to BUILD/crashes
# (BUILD/crashes-core).  fuzz_core reads the files its cores map only inside
# BUILD/core-root, a copy of the few host files its seeds map.
# Exit 0 with no finding; 1 on a crash, a leak, a timeout or a build error.
# The last line is a summary.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir="$top/build-fuzz"
mode=""
runs=0
jobs=1
smoke_time=60
core_time=30
core_runs=""
which=all

usage() {
	sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
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
	--core-time) core_time=${2:?}; shift ;;
	--core-time=*) core_time=${1#*=} ;;
	--core-runs) core_runs=${2:?}; shift ;;
	--core-runs=*) core_runs=${1#*=} ;;
	--target) which=${2:?}; shift ;;
	--target=*) which=${1#*=} ;;
	--build) dir=${2:?}; shift ;;
	--build=*) dir=${1#*=} ;;
	-h|--help) usage ;;
	*) echo "fuzz.sh: unknown argument '$1'" >&2; usage ;;
	esac
	shift
done
[ -n "$mode" ] || usage
case "$which" in readers|core|all) ;; *) echo "fuzz.sh: --target readers, core or all" >&2; exit 2 ;; esac
case "$runs$jobs$smoke_time$core_time$core_runs" in *[!0-9]*) echo "fuzz.sh: numbers only" >&2; exit 2 ;; esac
[ "$jobs" -ge 1 ] || jobs=1

if ! command -v clang > /dev/null 2>&1; then
	echo "fuzz: FAILED: clang not found (scripts/deps.sh installs it)"
	exit 1
fi

targets=()
case "$which" in
readers) targets=(fuzz_readers) ;;
core) targets=(fuzz_core) ;;
all) targets=(fuzz_readers fuzz_core) ;;
esac

echo "fuzz: building in $dir"
mkdir -p "$dir"
blog="$dir/fuzz-build.log"
build_args=()
for t in "${targets[@]}"; do
	build_args+=(--target "$t")
done
if ! CC=clang cmake -S "$top" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DPYX_FUZZ=ON -DPYX_TESTS=OFF -DPYX_WERROR=ON -DPYX_TEST_HOOKS=ON \
	> "$blog" 2>&1 ||
   ! cmake --build "$dir" -j"$(nproc)" "${build_args[@]}" >> "$blog" 2>&1; then
	tail -n 30 "$blog"
	echo "fuzz: FAILED: build (log: $blog)"
	exit 1
fi

# The host files the core seeds map (Debian's python3.11 and what it
# links): fuzz_core opens a python over a seed only if these match the
# build-ids the seed shows; on another host the seeds still parse, and the
# python is refused (less coverage, no finding).
core_root_files=(
	/usr/bin/python3.11
	/usr/lib/x86_64-linux-gnu/libc.so.6
	/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
	/usr/lib/x86_64-linux-gnu/libm.so.6
	/usr/lib/x86_64-linux-gnu/libz.so.1.2.13
	/usr/lib/x86_64-linux-gnu/libexpat.so.1.8.10
)

# Set bin, crashes, work, seeds, regressions and seed_dirs for target $1.
setup() {
	local t=$1 d
	bin="$dir/test/fuzz/$t"
	seed_dirs=()
	regressions=()
	if [ "$t" = fuzz_readers ]; then
		crashes="$dir/crashes"
		work="$dir/corpus"
		mapfile -t seeds < <(find "$top/test/fuzz/corpus" -type f -name '*.img' | sort)
		mapfile -t regressions < <(find "$top/test/fuzz/regressions" -type f ! -name '*.md' 2>/dev/null | sort)
		for d in "$top"/test/fuzz/corpus/*/; do
			[ -d "$d" ] && seed_dirs+=("$d")
		done
		if [ "${#seeds[@]}" -eq 0 ]; then
			echo "fuzz: FAILED: no seeds in test/fuzz/corpus"
			exit 1
		fi
		unset PYX_FUZZ_CORE_SYSROOT
	else
		crashes="$dir/crashes-core"
		work="$dir/corpus-core"
		mapfile -t seeds < <(find "$top/test/fuzz/corpus-core" -type f ! -name '*.md' | sort)
		mapfile -t regressions < <(find "$top/test/fuzz/regressions" -type f -name 'core-*' ! -name '*.md' 2>/dev/null | sort)
		seed_dirs=("$top/test/fuzz/corpus-core")
		if [ "${#seeds[@]}" -eq 0 ]; then
			echo "fuzz: FAILED: no seeds in test/fuzz/corpus-core"
			exit 1
		fi
		local root="$dir/core-root" f
		for f in "${core_root_files[@]}"; do
			[ -f "$f" ] || continue
			mkdir -p "$root$(dirname "$f")"
			[ "$f" -ot "$root$f" ] || cp -L --preserve=timestamps "$f" "$root$f"
		done
		mkdir -p "$root"
		export PYX_FUZZ_CORE_SYSROOT="$root"
	fi
	mkdir -p "$crashes" "$work"
}

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
opts_for() {
	opts=(-timeout=25 -rss_limit_mb=2048 -print_final_stats=1
	      "-artifact_prefix=$crashes/")
}

# The figures of a libFuzzer log: executions, exec/s, cov, ft.
stats() {
	local log=$1 n rate cov ft
	n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | awk '{s += $1} END {print s + 0}')
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | awk '{s += $1} END {print s + 0}')
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
	ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
	echo "$n executions, $rate exec/s, cov: ${cov:-?} ft: ${ft:-?}"
}

# The targets' summaries on one line.
join() {
	local out=$1
	shift
	for x in "$@"; do
		out="$out | $x"
	done
	printf '%s\n' "$out"
}

crash_report() {
	local log=$1
	grep -E 'ERROR: |runtime error|SUMMARY|Test unit written|#[0-9]+ 0x.* in ' "$log" | head -n 40 || true
}

if [ "$mode" = smoke ]; then
	summary=()
	for t in "${targets[@]}"; do
		setup "$t"
		opts_for
		secs=$smoke_time
		[ "$t" = fuzz_core ] && secs=$core_time
		sfx=""
		[ "$t" = fuzz_core ] && sfx="-core"
		log="$dir/smoke$sfx.log"
		echo "fuzz: $t: replaying ${#seeds[@]} seeds and ${#regressions[@]} regressions"
		if ! "$bin" "${opts[@]}" "${seeds[@]}" "${regressions[@]}" > "$log" 2>&1; then
			crash_report "$log"
			echo "fuzz smoke: FAILED: $t: a seed or a regression crashes (log: $log)"
			exit 1
		fi
		echo "fuzz: $t: fuzzing for $secs s"
		log="$dir/smoke-fuzz$sfx.log"
		if ! "$bin" "${opts[@]}" -max_total_time="$secs" "$work" \
			"${seed_dirs[@]}" > "$log" 2>&1; then
			crash_report "$log"
			echo "fuzz smoke: FAILED: $t: crash after $(stats "$log") (input in $crashes, log: $log)"
			exit 1
		fi
		summary+=("$t: ${#seeds[@]} seeds and ${#regressions[@]} regressions replayed; $secs s of fuzzing: $(stats "$log"), crashes: 0")
	done
	echo "fuzz smoke: OK: $(join "${summary[@]}")"
	exit 0
fi

# The long run.
[ "$runs" -gt 0 ] || { echo "fuzz.sh: --runs N, N > 0" >&2; exit 2; }
# fuzz_core runs 10-20 times slower (each input opens a python and unwinds).
# With --target core, N is its own.
if [ -z "$core_runs" ]; then
	core_runs=$(( runs / 20 > 0 ? runs / 20 : 1 ))
	[ "$which" = core ] && core_runs=$runs
fi
summary=()
failed=0
for t in "${targets[@]}"; do
	setup "$t"
	opts_for
	n=$runs
	[ "$t" = fuzz_core ] && n=$core_runs
	logdir="$dir/logs"
	[ "$t" = fuzz_core ] && logdir="$dir/logs-core"
	mkdir -p "$logdir"
	start=$(date +%s)
	# what this run finds, not an input an earlier run left there (kept
	# for its replay: a found crash becomes a regression by hand)
	stamp="$logdir/.start"
	touch "$stamp"
	echo "fuzz: $t: $n executions, $jobs job(s), $(date -u +%FT%TZ); logs in $logdir"
	rc=0
	if [ "$jobs" -eq 1 ]; then
		log="$logdir/run.log"
		# Progress goes to our output as well as to the log.
		"$bin" "${opts[@]}" -runs="$n" "$work" "${seed_dirs[@]}" 2>&1 |
			tee "$log" | grep --line-buffered -E '^#[0-9]+[[:space:]]+pulse|^Done|ERROR|runtime error' || true
		rc=${PIPESTATUS[0]}
		logs=("$log")
	else
		per=$(( (n + jobs - 1) / jobs ))
		(cd "$logdir" && rm -f fuzz-*.log &&
		 "$bin" "${opts[@]}" -runs="$per" -jobs="$jobs" -workers="$jobs" \
			"$work" "${seed_dirs[@]}") || rc=$?
		logs=("$logdir"/fuzz-*.log)
	fi
	cat "${logs[@]}" > "$logdir/all.log"
	secs=$(( $(date +%s) - start ))
	ncrash=$(find "$crashes" -type f -newer "$stamp" \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
	if [ "$rc" -ne 0 ] || [ "$ncrash" -ne 0 ]; then
		crash_report "$logdir/all.log"
		summary+=("$t: FAILED: $(stats "$logdir/all.log") in $secs s; crashes: $ncrash (inputs in $crashes)")
		failed=1
		break
	fi
	summary+=("$t: $(stats "$logdir/all.log") in $secs s; crashes: 0")
done
if [ "$failed" -ne 0 ]; then
	echo "fuzz: FAILED: $(join "${summary[@]}")"
	exit 1
fi
echo "fuzz: OK: $(join "${summary[@]}")"
