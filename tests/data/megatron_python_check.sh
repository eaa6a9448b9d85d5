#!/usr/bin/env bash
# `tessel data prepare` output read back by the independent Python reader: the documents and
# their byte-tokenizer ids (text bytes + end-of-text 256) must come back exactly.
#   tests/data/megatron_python_check.sh TESSEL_BINARY SOURCE_DIR
set -euo pipefail
tessel=$1
src=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf 'ab' > "$dir/1.txt"
printf 'Zürich\n' > "$dir/2.txt"
printf '' > "$dir/3.txt"   # empty: skipped
printf 'x' > "$dir/4.txt"
"$tessel" data prepare --input "$dir/1.txt" "$dir/2.txt" "$dir/3.txt" "$dir/4.txt" --tokenizer bytes --out "$dir/ds" >/dev/null
got=$(python3 "$src/tests/data/read_megatron.py" "$dir/ds_train")
want='[[97, 98, 256], [90, 195, 188, 114, 105, 99, 104, 10, 256], [120, 256]]'
if [ "$got" != "$want" ]; then
  echo "independent reader got $got, expected $want" >&2
  exit 1
fi
echo "1 passed, 0 failed"
