#!/usr/bin/env bash
# Builds Tessel with sanitizers (CPU only) in its own build directory and runs tests on it.
#   scripts/sanitize.sh address,undefined [BUILD_DIR]   every CTest test, MPI included
#       (SANITIZE_SCOPE=single-process: only the tests that start no mpirun, as CI runs them)
#   scripts/sanitize.sh thread [BUILD_DIR]              the tests of code that runs threads of
#       its own: the MPI progress thread (communicator tests under mpirun), asynchronous
#       checkpoint writing, and data preparation workers
# A report from any sanitizer fails the test it came from. Suppressions (scripts/sanitizers/)
# name only third-party libraries, each with the reason.
set -euo pipefail
sanitizers=${1:?usage: scripts/sanitize.sh address,undefined|thread [BUILD_DIR]}
build=${2:-build-$([ "$sanitizers" = thread ] && echo tsan || echo asan)}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=${JOBS:-$(nproc)}
supp="$root/scripts/sanitizers"

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTESSEL_SANITIZE="$sanitizers" \
  -DTESSEL_NATIVE=ON > "$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
cmake --build "$build" -j "$jobs"

export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=0"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export TSAN_OPTIONS="suppressions=$supp/tsan.supp:halt_on_error=1:second_deadlock_stack=1"
# One thread per process for OpenMP and OpenBLAS: neither runtime is instrumented, and the
# sanitized processes already share the cores.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

cd "$build"
if [ "$sanitizers" = thread ]; then
  ctest -j "$jobs" --output-on-failure --timeout 900 \
    -R "mpi: communicator tests|asynchronous saves during training|prepare output is byte-identical for 1 and 3 workers"
else
  # Leaks are checked in every process that does not start MPI. Under mpirun (the tests named
  # mpi:, launch:, checkpoints:, planner:) OpenMPI unloads its components before the process
  # exits, so what they allocated can no longer be told from Tessel's: there LeakSanitizer is
  # off, and AddressSanitizer's and UBSan's checks stay on.
  multi="^(mpi|launch|checkpoints|planner):"
  status=0
  ctest -j "$jobs" --output-on-failure --timeout 1800 -E "$multi" || status=1
  if [ "${SANITIZE_SCOPE:-all}" != single-process ]; then
    ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0" ctest -j "$jobs" --output-on-failure --timeout 1800 -R "$multi" || status=1
  fi
  exit $status
fi
