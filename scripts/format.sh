#!/usr/bin/env bash
# Checks that every C++ and CUDA file is laid out as .clang-format says, or fixes them.
#   scripts/format.sh            check the repository's files (exit 1 naming those that differ)
#   scripts/format.sh --fix      rewrite them in place (`make format`)
#   scripts/format.sh FILE...    check just these
# CLANG_FORMAT names the program (default clang-format; Debian 12's is version 14).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
clang_format=${CLANG_FORMAT:-clang-format}
command -v "$clang_format" > /dev/null || {
  echo "format: $clang_format not found; hint: scripts/setup.sh installs clang-format" >&2; exit 2; }

fix=false
files=()
for arg in "$@"; do
  case "$arg" in
    --fix) fix=true ;;
    *) files+=("$arg") ;;
  esac
done
if [ ${#files[@]} -eq 0 ]; then
  cd "$root"
  if [ -d .git ]; then
    mapfile -t files < <(git ls-files '*.h' '*.cc' '*.cu' '*.cuh')
  else
    mapfile -t files < <(find core data optim parallel train launch tests examples bench \
      -name '*.h' -o -name '*.cc' -o -name '*.cu' -o -name '*.cuh' | sort)
  fi
fi

if $fix; then
  "$clang_format" -i --style=file "${files[@]}"
  echo "format: ${#files[@]} files laid out with $("$clang_format" --version | head -1)"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  "$clang_format" --style=file --dry-run -Werror "$f" > /dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  printf 'format: %s differs from .clang-format\n' "${bad[@]}"
  echo "format: ${#bad[@]} of ${#files[@]} files are not formatted; hint: run \`make format\` (clang-format -i)"
  exit 1
fi
echo "format: all ${#files[@]} files match .clang-format"
