#!/usr/bin/env bash
# Every C++ and CUDA file of the tree is laid out as .clang-format says, and the check does catch
# a file that is not.
#   tests/format_check.sh SOURCE_DIR
set -euo pipefail
src=$1
bash "$src/scripts/format.sh"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$src/.clang-format" "$tmp/"
printf 'int   main( ){return 0;}\n' > "$tmp/bad.cc"
if out=$(bash "$src/scripts/format.sh" "$tmp/bad.cc"); then
  echo "FAIL: the check accepted an unformatted file:"; echo "$out"; exit 1
fi
grep -qF "$tmp/bad.cc differs from .clang-format" <<< "$out" || { echo "FAIL: the file was not named:"; echo "$out"; exit 1; }
echo "format: the tree matches .clang-format, and the check catches a file that does not"
