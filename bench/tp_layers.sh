#!/usr/bin/env bash
# Tensor parallelism on this machine: per-layer training time (forward + backward + the
# layer's communication) and activation memory per rank, for tp = 1, 2, 4, with and without
# sequence parallelism and selective recomputation. Each figure is the difference between a
# model of 4 layers and one of 2 layers, divided by 2, so the embedding and the output layer
# drop out. The ranks share this machine's cores (tp 4 on 2 cores is oversubscribed: read the
# memory figures as they are and the times as what this machine does, not as a cluster would).
# Prints one JSON line per configuration.
#   bench/tp_layers.sh [BUILD_DIR] [CONFIG] [SEQ] [MICRO]
set -euo pipefail
build=${1:-build}
config=${2:-configs/gpt2-124m.yaml}
seq=${3:-256}
micro=${4:-2}
cores=$(nproc)
root=()
[ "$(id -u)" = 0 ] && root=(--allow-run-as-root)

step() {  # tp sp recompute layers -> the bench JSON line
  local tp=$1 sp=$2 recompute=$3 layers=$4 threads=$(( cores / $1 > 0 ? cores / $1 : 1 ))
  OMP_NUM_THREADS=$threads mpirun -np "$tp" --oversubscribe --bind-to none "${root[@]}" "$build/tessel" bench step "$config" \
    --set model.vocab_size=50304 model.seq_len="$seq" batch.micro="$micro" batch.global="$micro" model.layers="$layers" \
    parallel.tp="$tp" parallel.sequence_parallel="$sp" parallel.recompute="$recompute" --steps 3 --warmup 1 2>/dev/null
}
field() { sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p" <<<"$2"; }

for tp in 1 2 4; do
  for sp in false true; do
    [ "$tp" = 1 ] && [ "$sp" = true ] && continue
    for recompute in none selective; do
      two=$(step "$tp" "$sp" "$recompute" 2)
      four=$(step "$tp" "$sp" "$recompute" 4)
      python3 - "$tp" "$sp" "$recompute" "$(field ms_per_step "$two")" "$(field ms_per_step "$four")" \
        "$(field activation_mib "$two")" "$(field activation_mib "$four")" <<'PY'
import json, sys
tp, sp, recompute = int(sys.argv[1]), sys.argv[2] == "true", sys.argv[3]
ms2, ms4, mib2, mib4 = map(float, sys.argv[4:])
print(json.dumps({"bench": "tp_layer", "tp": tp, "sequence_parallel": sp, "recompute": recompute,
                  "ms_per_layer": round((ms4 - ms2) / 2, 1), "activation_mib_per_layer": round((mib4 - mib2) / 2, 3)}))
PY
    done
  done
done
