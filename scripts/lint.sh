#!/usr/bin/env bash
# clang-tidy with .clang-tidy's checks over Tessel's own C++ files (not the .cu files: clang's
# CUDA front end would need a second toolchain), through BUILD_DIR/compile_commands.json.
# Exit 1 with the findings when there are any.
#   scripts/lint.sh [BUILD_DIR] [FILE_REGEX]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
filter=${2:-"$root/(core|data|optim|parallel|train|launch|tests|examples)/.*\\.cc$"}
run=$(command -v run-clang-tidy || command -v run-clang-tidy-14 || true)
[ -n "$run" ] || { echo "lint: run-clang-tidy not found; hint: scripts/setup.sh --lint installs clang-tidy" >&2; exit 2; }
[ -f "$build/compile_commands.json" ] || { echo "lint: no $build/compile_commands.json; hint: make build" >&2; exit 2; }
# Generated sources (protobuf) and third-party code are not Tessel's to lint.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
headers="^$root/(core|data|optim|parallel|train|launch|tests|examples)/"
if "$run" -p "$build" -j "${JOBS:-$(nproc)}" -quiet -header-filter="$headers" "$filter" > "$log" 2>&1; then
  linted=$(sed -n 's/.*"file": "\(.*\)".*/\1/p' "$build/compile_commands.json" | grep -cE "$filter" || true)
  echo "lint: clean ($linted translation units linted)"
else
  grep -E "(warning|error):" "$log" | grep -v "warnings generated\|Suppressed" | sort -u
  echo "lint: findings above (.clang-tidy); hint: fix them, or say in .clang-tidy why a check does not apply"
  exit 1
fi
