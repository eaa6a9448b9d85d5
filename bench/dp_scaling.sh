#!/usr/bin/env bash
# Data parallelism on this machine, in one run:
#   - step time of one rank (all cores) against two data-parallel ranks (half the cores each)
#     for the same global batch: the scaling of DP (ideal: the same time, with half the work each);
#   - the gradient all-reduce time left exposed after backward with the buckets started during
#     backward, and with the same buckets started after it (parallel.overlap_grad_reduce=false):
#     hidden fraction = 1 - ratio;
#   - MPI all-reduce time and bandwidth by message size (tessel bench comm).
# Prints the JSON lines of each run, then a summary line.
#   bench/dp_scaling.sh [BUILD_DIR] [CONFIG] [SEQ] [GLOBAL_BATCH]
set -euo pipefail
build=${1:-build}
config=${2:-configs/gpt2-124m.yaml}
seq=${3:-64}
global=${4:-8}
cores=$(nproc)
mpirun=(mpirun -np 2 --bind-to none)
[ "$(id -u)" = 0 ] && mpirun+=(--allow-run-as-root)
[ "$cores" -lt 2 ] && mpirun+=(--oversubscribe)
common=(model.seq_len="$seq" batch.global="$global" batch.micro=$((global / 2)))

one=$(OMP_NUM_THREADS=$cores "$build/tessel" bench step "$config" --set "${common[@]}" --steps 5 --warmup 2 2>/dev/null)
echo "$one"
two=$(OMP_NUM_THREADS=$((cores / 2 > 0 ? cores / 2 : 1)) "${mpirun[@]}" "$build/tessel" bench step "$config" \
  --set "${common[@]}" --steps 5 --warmup 2 2>/dev/null)
echo "$two"
serial=$(OMP_NUM_THREADS=$((cores / 2 > 0 ? cores / 2 : 1)) "${mpirun[@]}" "$build/tessel" bench step "$config" \
  --set "${common[@]}" parallel.overlap_grad_reduce=false --steps 5 --warmup 2 2>/dev/null)
echo "$serial"
OMP_NUM_THREADS=1 "${mpirun[@]}" "$build/tessel" bench comm --max-mb 64 2>/dev/null

field() { sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p" <<<"$2"; }
python3 - "$(field ms_per_step "$one")" "$(field ms_per_step "$two")" "$(field comm_wait_ms "$two")" \
  "$(field ms_per_step "$serial")" "$(field comm_wait_ms "$serial")" <<'PY'
import json, sys
one, two, wait_overlap, serial, wait_serial = map(float, sys.argv[1:])
print(json.dumps({"bench": "dp_scaling", "ms_per_step_1_rank": one, "ms_per_step_2_ranks": two,
                  "speedup_2_ranks": round(one / two, 3),
                  "exposed_comm_ms_overlapped": wait_overlap, "exposed_comm_ms_not_overlapped": wait_serial,
                  "ms_per_step_2_ranks_not_overlapped": serial,
                  "hidden_fraction": round(1 - wait_overlap / wait_serial, 3) if wait_serial > 0 else None}))
PY
