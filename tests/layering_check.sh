#!/usr/bin/env bash
# The layering rule (scripts/check_layers.py) holds on the tree, and the checker does catch a
# header included from a higher layer, one from a peer layer, and a test binary linking above
# its layer.
#   tests/layering_check.sh SOURCE_DIR
set -euo pipefail
src=$1
python3 "$src/scripts/check_layers.py" "$src"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/core/model" "$tmp/data" "$tmp/tests/parallel" "$tmp/optim" "$tmp/parallel" "$tmp/train" "$tmp/launch"
printf '#include "core/tensor.h"\n#include "train/trainer.h"\n' > "$tmp/core/model/block.h"
printf '#include "optim/adamw.h"\n' > "$tmp/data/sampler.cc"
printf '#include "parallel/topology.h"\n' > "$tmp/tests/parallel/ok_test.cc"
printf 'tessel_test_binary(tests_parallel parallel tessel_parallel tessel_launch)\n' > "$tmp/tests/CMakeLists.txt"
if out=$(python3 "$src/scripts/check_layers.py" "$tmp"); then
  echo "FAIL: the checker accepted a tree that breaks the layering:"; echo "$out"; exit 1
fi
for expected in 'core/model/block.h:2: core includes "train/trainer.h" from train, a layer above it' \
                'data/sampler.cc:1: data includes "optim/adamw.h" from optim, a layer beside it' \
                'tests/CMakeLists.txt:1: tests_parallel (layer parallel) links tessel_launch from launch'; do
  grep -qF "$expected" <<< "$out" || { echo "FAIL: expected '$expected' in:"; echo "$out"; exit 1; }
done
if grep -q "ok_test.cc" <<< "$out"; then echo "FAIL: flagged an allowed include:"; echo "$out"; exit 1; fi
echo "layering: the tree keeps it, and the checker catches each kind of violation"
