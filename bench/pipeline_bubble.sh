#!/usr/bin/env bash
# Pipeline bubble on this machine: for pp = 2 and 4 and each schedule (gpipe, 1f1b, interleaved
# with 2 virtual stages), `tessel bench step` measures the stages' idle time over their busy
# time in a step (Megatron's bubble measure: idle = stages x the slowest stage's schedule time
# - the busy time summed over the stages) and prints it beside the simulated figure (every
# forward 1, every backward 2, transfers free) and the theoretical (p-1)/(m·v). One thread
# per rank; pp 4 on a 2-core machine is oversubscribed (ranks that compute at the same time
# share a core), so read its measured figures as what this machine does.
# Prints one JSON line per configuration.
#   bench/pipeline_bubble.sh [BUILD_DIR] [CONFIG] [MICRO_BATCHES...]
set -euo pipefail
build=${1:-build}
config=${2:-configs/gpt2-124m.yaml}
shift $(( $# > 2 ? 2 : $# ))
micro_batches=("${@:-4 8}")
root=()
[ "$(id -u)" = 0 ] && root=(--allow-run-as-root)

# A model whose layers dominate its embedding and head, small enough for a CPU: 8 layers of
# width 256 over sequences of 128.
shape=(model.vocab_size=4096 model.seq_len=128 model.d_model=256 model.heads=4 model.kv_heads=4 model.ffn_dim=1024
       model.layers=8 batch.micro=2)
for m in ${micro_batches[*]}; do
  for pp in 2 4; do
    for schedule in gpipe 1f1b interleaved; do
      v=1
      [ "$schedule" = interleaved ] && v=2
      OMP_NUM_THREADS=1 mpirun -np "$pp" --oversubscribe --bind-to none "${root[@]}" "$build/tessel" bench step "$config" \
        --set "${shape[@]}" batch.global=$(( 2 * m )) parallel.pp="$pp" parallel.schedule="$schedule" \
        parallel.virtual_stages="$v" --steps 5 --warmup 2 2>/dev/null
    done
  done
done
