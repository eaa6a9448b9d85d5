#!/usr/bin/env bash
# tessel plan and tessel tune end to end:
#   1. a 70B LLaMA-style model on 64 x h100-sxm and 64 x h800: JSON candidates with the memory
#      and time fields, all within the GPU's memory; the reasons name TP across nodes and the
#      inter-node link's bandwidth;
#   2. bad input: an unknown hardware name lists the known ones; a GPU count with no valid
#      factorization and a model that fits no layout say so;
#   3. tessel tune runs the top 3 layouts of a tiny model on this machine, prints predicted
#      against measured and writes a loadable config; its sub-0.1 s steps are not recorded as
#      calibration, and a recorded calibration scales the next plan.
#   tests/launch/planner_check.sh TESSEL_BINARY SOURCE_DIR
set -euo pipefail
tessel=$1
src=$2
dir=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT
source "$(dirname "$0")/check_lib.sh"
export TESSEL_CALIBRATION_DIR=$dir/calibration OMP_NUM_THREADS=1

for hw in h100-sxm h800; do
  "$tessel" plan "$src/configs/llama-70b.yaml" --gpus 64 --hardware $hw --format json --top 5 > "$dir/$hw.json"
  "$tessel" plan "$src/configs/llama-70b.yaml" --gpus 64 --hardware $hw --top 5 > "$dir/$hw.txt"
  grep -q "tensor parallelism across nodes (tp > 8): .* inter-node link" "$dir/$hw.txt" || { cat "$dir/$hw.txt"; fail "$hw: no TP-across-nodes reason"; }
done
python3 - "$dir/h100-sxm.json" "$dir/h800.json" <<'PY'
import json, sys
h100, h800 = (json.load(open(p)) for p in sys.argv[1:])
for plan, cap in ((h100, 80), (h800, 80)):
    assert plan["gpus"] == 64 and len(plan["candidates"]) == 5, plan.keys()
    for c in plan["candidates"]:
        l = c["layout"]
        assert l["tp"] * l["pp"] * l["dp"] == 64, l
        assert 0 < c["memory_gb_per_gpu"] <= cap * 0.9, c
        assert abs(sum(c["memory_gb"].values()) - c["memory_gb_per_gpu"]) < 1e-6 * c["memory_gb_per_gpu"]
        assert c["step_time_s"] > 0 and c["tokens_per_s"] > 0 and 0 < c["mfu"] < 1, c
    times = [c["step_time_s"] for c in plan["candidates"]]
    assert times == sorted(times), times
# The cut NVLink makes the same layouts slower, tensor parallelism most.
assert h800["candidates"][0]["step_time_s"] > h100["candidates"][0]["step_time_s"]
PY

expect_error() {  # message, then the command
  local want=$1; shift
  if "$@" > "$dir/err.txt" 2>&1; then fail "expected an error: $*"; fi
  grep -q "$want" "$dir/err.txt" || { cat "$dir/err.txt"; fail "expected '$want'"; }
}
expect_error "unknown hardware 'h900'; known: a100-80gb, cpu-local, h100-sxm, h20, h200, h800" \
  "$tessel" plan "$src/configs/llama-70b.yaml" --gpus 64 --hardware h900
expect_error "no layout of 7 GPUs fits this model" "$tessel" plan "$src/configs/llama-70b.yaml" --gpus 7 --hardware h100-sxm
expect_error "the model fits no layout of 8 x h100-sxm .* the smallest needs" \
  "$tessel" plan "$src/configs/llama-70b.yaml" --gpus 8 --hardware h100-sxm

cat > "$dir/tiny.yaml" <<YAML
model: {arch: llama, vocab_size: 256, seq_len: 64, layers: 4, d_model: 128, heads: 4, kv_heads: 2, ffn_dim: 256}
batch: {global: 8, micro: 4}
run: {out_dir: $dir/run}
YAML
"$tessel" tune "$dir/tiny.yaml" --gpus 2 --top 3 --steps 2 --set parallel.recompute=none > "$dir/tune.txt" \
  || { cat "$dir/tune.txt" "$dir/run/tuned.yaml.log"; fail "tune"; }
cat "$dir/tune.txt"
[ "$(grep -cE '^ +[0-9] +tp [0-9]+ x pp .* [0-9.]+ +[0-9.]+ +[0-9.]+$' "$dir/tune.txt")" = 3 ] || fail "tune did not report 3 measured layouts"
grep -q "^parallel:" "$dir/run/tuned.yaml" || fail "no tuned config written"
# Steps this short are dominated by overheads: tune must not record them as calibration.
grep -q "not recorded as calibration" "$dir/tune.txt" || fail "tune recorded ratios of sub-0.1 s steps"
[ ! -e "$dir/calibration/cpu-local.json" ] || fail "a calibration file was written"
# A recorded calibration scales later plans.
mkdir -p "$dir/calibration"
echo '{"hardware": "cpu-local", "ratios": [1.5, 2.5, 2.0]}' > "$dir/calibration/cpu-local.json"
"$tessel" plan "$dir/run/tuned.yaml" --gpus 2 --hardware cpu-local --top 1 > "$dir/after.txt"
grep -q "times scaled by 2, the median measured / predicted of 3 runs of tessel tune on cpu-local" "$dir/after.txt" \
  || { cat "$dir/after.txt"; fail "the plan did not apply the recorded ratios"; }
echo "plan and tune: ok"
