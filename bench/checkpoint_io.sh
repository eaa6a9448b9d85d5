#!/usr/bin/env bash
# Checkpoint throughput on this machine: `tessel bench checkpoint` for GPT-2 124M (weights and
# both AdamW moments, 1.48 GB) saved by one rank, by 2 data-parallel ranks with ZeRO-1 (each
# writes its moment shard) and by 2 tensor-parallel ranks: synchronous save and load in GB/s,
# and what an asynchronous save costs the step loop. Compare with the disk's own speed, which
# the script measures first (dd of 1 GiB with fsync). Prints one JSON line per layout.
#   bench/checkpoint_io.sh [BUILD_DIR] [CONFIG] [SAVES]
set -euo pipefail
build=${1:-build}
config=${2:-configs/gpt2-124m.yaml}
saves=${3:-3}
root=()
[ "$(id -u)" = 0 ] && root=(--allow-run-as-root)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
dd_line=$(dd if=/dev/zero of="$scratch/dd" bs=1M count=1024 conv=fsync 2>&1 | tail -1)
rm -f "$scratch/dd"
python3 -c 'import json, sys; print(json.dumps({"bench": "disk", "dd_1gib_fsync": sys.argv[1]}))' "$dd_line"
shape=(model.vocab_size=50304 model.seq_len=64 batch.micro=1)
"$build/tessel" bench checkpoint "$config" --set "${shape[@]}" batch.global=1 --saves "$saves" --dir "$scratch/one" 2>/dev/null
for layout in "parallel.zero=1" "parallel.tp=2"; do
  OMP_NUM_THREADS=1 mpirun -np 2 --oversubscribe --bind-to none "${root[@]}" "$build/tessel" bench checkpoint "$config" \
    --set "${shape[@]}" batch.global=2 "$layout" --saves "$saves" --dir "$scratch/${layout//[.=]/_}" 2>/dev/null
done
