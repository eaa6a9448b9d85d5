#!/usr/bin/env bash
# Mixture-of-Experts on this machine, with `tessel bench step` (one JSON line per figure):
#   1. per-layer training time of configs/demo-moe.yaml's MoE layer (8 experts of 224, top-2, a
#      shared expert of 240) against configs/demo.yaml's dense layer of the same active width
#      (688): each figure is the difference between models of 4 and 2 layers, halved, so the
#      embedding and the head drop out;
#   2. the share of the step spent in expert parallelism's dispatch and combine all-to-alls, on
#      1, 2 and 4 ranks (ep = ranks, each rank a data-parallel replica with 4 micro-batches).
# The ranks share this machine's cores: read the exchange times as what this machine does.
#   bench/moe.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
cores=$(nproc)
root=()
[ "$(id -u)" = 0 ] && root=(--allow-run-as-root)
shape=(model.seq_len=64 batch.micro=4 run.device=cpu)
field() { sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p" <<<"$2"; }
step() {  # ranks config layers [--set ...] -> the bench JSON line
  local ranks=$1 config=$2 layers=$3; shift 3
  OMP_NUM_THREADS=$(( cores / ranks > 0 ? cores / ranks : 1 )) mpirun -np "$ranks" --oversubscribe --bind-to none \
    "${root[@]}" "$build/tessel" bench step "$config" --set "${shape[@]}" model.layers="$layers" "$@" --steps 3 \
    --warmup 1 2>/dev/null
}

for config in configs/demo.yaml configs/demo-moe.yaml; do
  two=$(step 1 "$config" 2 batch.global=4)
  four=$(step 1 "$config" 4 batch.global=4)
  python3 - "$config" "$(field ms_per_step "$two")" "$(field ms_per_step "$four")" "$(field params "$two")" \
    "$(field params "$four")" "$(field tflops "$four")" <<'PY'
import json, sys
config = sys.argv[1]
ms2, ms4, p2, p4, tflops = map(float, sys.argv[2:])
print(json.dumps({"bench": "moe_layer", "config": config, "ms_per_layer": round((ms4 - ms2) / 2, 2),
                  "params_per_layer": int((p4 - p2) / 2), "tflops_4_layers": tflops}))
PY
done

for ranks in 1 2 4; do
  line=$(step "$ranks" configs/demo-moe.yaml 4 batch.global=$((16 * ranks)) parallel.ep="$ranks")
  python3 - "$ranks" "$(field ms_per_step "$line")" "$(field moe_exchange_ms "$line")" <<'PY'
import json, sys
ranks, ms, exchange = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
print(json.dumps({"bench": "moe_exchange", "ranks": ranks, "ep": ranks, "ms_per_step": ms,
                  "dispatch_combine_ms": exchange, "share": round(exchange / ms, 4)}))
PY
done
