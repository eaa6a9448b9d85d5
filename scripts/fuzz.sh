#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser a user's input reaches (tests/fuzz/target.h): builds
# the libFuzzer executables with clang, ASan and UBSan in BUILD_DIR, then runs each target from
# its committed seeds (tests/fuzz/corpus/<target>/) plus what earlier runs found
# (BUILD_DIR/corpus/<target>/, kept between runs).
#   scripts/fuzz.sh [BUILD_DIR]     (`make fuzz`)
# Environment:
#   FUZZ_SECONDS=N   seconds per target (default 20)
#   FUZZ_RUNS=N      executions per target instead (e.g. 1000000)
#   FUZZ_TARGETS="config json ..."   a subset (default: every target)
#   FUZZ_JOBS=N      targets run at once (default: the cores)
# Each target stops at its first crash, leak, sanitizer report, timeout (10 s on one input) or
# allocation over 1 GiB; the input is kept in BUILD_DIR/artifacts/<target>/. A fix adds that
# input to tests/fuzz/regressions/<target>/, which `make test` replays. The figures of the last
# run are in BUILD_DIR/fuzz_summary.json.
set -euo pipefail
build=${1:-build-fuzz}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=${JOBS:-$(nproc)}

CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTESSEL_FUZZ=ON \
  -DTESSEL_BUILD_TESTS=OFF > "$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
cmake --build "$build" -j "$jobs" --target tessel_fuzzers

targets=${FUZZ_TARGETS:-$(ls "$root/tests/fuzz/corpus")}
limit=(-max_total_time="${FUZZ_SECONDS:-20}")
[ -n "${FUZZ_RUNS:-}" ] && limit=(-runs="$FUZZ_RUNS")
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export TESSEL_GPT2_DIR=${TESSEL_GPT2_DIR:-$root/.cache/gpt2}

run_target() {
  local t=$1
  local work="$build/corpus/$t" artifacts="$build/artifacts/$t" log="$build/logs/$t.log"
  mkdir -p "$work" "$artifacts" "$(dirname "$log")"
  rm -f "$artifacts"/*
  "$build/fuzz/fuzz_$t" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 \
    -close_fd_mask=1 -artifact_prefix="$artifacts/" "$work" "tests/fuzz/corpus/$t" > "$log" 2>&1
}

status=0
pids=()
names=()
for t in $targets; do
  [ -x "$build/fuzz/fuzz_$t" ] || { echo "fuzz: no target '$t' (known: $(ls tests/fuzz/corpus | tr '\n' ' '))" >&2; exit 2; }
  while [ "$(jobs -rp | wc -l)" -ge "${FUZZ_JOBS:-$jobs}" ]; do sleep 1; done
  echo "fuzz: fuzz_$t ${limit[*]}"
  run_target "$t" &
  pids+=($!)
  names+=("$t")
done

summary="$build/fuzz_summary.json"
: > "$summary"
printf '%-12s %12s %10s %8s %8s %8s  %s\n' target executions "exec/s" edges features corpus result
for i in "${!pids[@]}"; do
  t=${names[$i]}
  log="$build/logs/$t.log"
  result=ok
  wait "${pids[$i]}" || result=FAILED
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1 || true)
  edges=$(echo "$cov" | awk '{print $2}')
  features=$(echo "$cov" | awk '{print $4}')
  corpus=$(echo "$cov" | awk '{print $6}')
  printf '%-12s %12s %10s %8s %8s %8s  %s\n' "$t" "${runs:-?}" "${speed:-?}" "${edges:-?}" "${features:-?}" "${corpus:-?}" "$result"
  printf '{"target":"%s","executions":%s,"exec_per_s":%s,"edges":%s,"features":%s,"corpus":%s,"result":"%s"}\n' \
    "$t" "${runs:-0}" "${speed:-0}" "${edges:-0}" "${features:-0}" "${corpus:-0}" "$result" >> "$summary"
  if [ "$result" != ok ]; then
    status=1
    echo "---- fuzz_$t: $(ls "$build/artifacts/$t" 2>/dev/null | tr '\n' ' ')" >&2
    grep -E "ERROR|SUMMARY|runtime error|uncaught|terminate|what\(\)|#[0-9]+ 0x" "$log" | head -30 >&2 || tail -30 "$log" >&2
    echo "hint: reproduce with $build/fuzz/fuzz_$t $build/artifacts/$t/<file>; once fixed, add the file to tests/fuzz/regressions/$t/" >&2
  fi
done
exit $status
