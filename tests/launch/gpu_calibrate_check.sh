#!/usr/bin/env bash
# The GPU window's calibrate stage, rehearsed without a GPU: scripts/gpu_calibrate.py turns the
# kernels stage's lines (here a canned set in bench/cuda_kernels.sh's format) into the h200
# profile with three measured constants, which tessel plan then loads and uses; bad input is an
# error; scripts/gpu_summary.py reports the constants and tune's ratios.
#   tests/launch/gpu_calibrate_check.sh TESSEL_BINARY SOURCE_DIR
set -euo pipefail
tessel=$1
src=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
source "$(dirname "$0")/check_lib.sh"

cat > "$dir/kernels_llama-1b.jsonl" <<'JSON'
{"bench": "cuda_kernels", "config": "configs/llama-1b.yaml", "dtype": "bf16", "op": "rmsnorm_forward", "tessel_ms": 0.01, "torch_ms": 0.02, "torch_over_tessel": 2.0, "tessel_gbps": 3650.0, "torch_gbps": 1800.0}
{"bench": "cuda_kernels", "config": "configs/llama-1b.yaml", "dtype": "bf16", "op": "matmul_forward_qkv", "tessel_ms": 0.1, "torch_ms": 0.1, "torch_over_tessel": 1.0, "tessel_tflops": 612.3, "torch_tflops": 610.0}
{"bench": "cuda_kernels", "config": "configs/llama-1b.yaml", "dtype": "bf16", "op": "matmul_forward_ffn_in", "tessel_ms": 0.1, "torch_ms": 0.1, "torch_over_tessel": 1.0, "tessel_tflops": 701.0, "torch_tflops": 700.0}
{"bench": "cuda_kernels", "config": "configs/llama-1b.yaml", "dtype": "bf16", "op": "attention_forward_flash", "tessel_ms": 0.2, "torch_ms": 0.1, "torch_over_tessel": 0.5, "tessel_tflops": 140.2, "torch_tflops": 280.4}
{"bench": "cuda_kernels", "config": "configs/llama-1b.yaml", "dtype": "bf16", "op": "adamw", "tessel_ms": 0.01, "torch_ms": 0.01, "torch_over_tessel": 1.0, "tessel_gbps": 3900.0, "torch_gbps": 3900.0}
JSON
python3 "$src/scripts/gpu_calibrate.py" "$src/configs/hardware/h200.yaml" "$dir/kernels_llama-1b.jsonl" \
  --date 2026-12-05 --commit abc1234 --device "NVIDIA H200" > "$dir/h200.yaml" 2> "$dir/calibrate.json" \
  || { cat "$dir/calibrate.json"; fail "gpu_calibrate.py"; }
# 701 / 989.5, 3900 / 4800, 140.2 / 701, each marked measured; the rest of the profile kept.
grep -qx "gemm_efficiency: 0.708  # measured 2026-12-05 on NVIDIA H200 with tessel bench kernels (commit abc1234): matmul_forward_ffn_in at configs/llama-1b.yaml's shapes, 701.0 TFLOPS" "$dir/h200.yaml" \
  || { cat "$dir/h200.yaml"; fail "gemm_efficiency"; }
grep -q "^memory_efficiency: 0.812  # measured .*: adamw at" "$dir/h200.yaml" || fail "memory_efficiency"
grep -q "^attention_efficiency: 0.2  # measured .*: attention_forward_flash at" "$dir/h200.yaml" || fail "attention_efficiency"
[ "$(grep -c '^sms: 132$' "$dir/h200.yaml")" = 1 ] || fail "the profile's other keys were not kept"
# tessel plan reads the new profile, and its slower attention and GEMMs make the same layout slower.
set_=(--set parallel.tp=8 parallel.pp=1 parallel.dp=1 batch.global=8 batch.micro=1 parallel.zero=0
      parallel.recompute=none parallel.sequence_parallel=true model.layers=16)
"$tessel" plan "$src/configs/llama-70b.yaml" --gpus 8 --hardware h200 --format json "${set_[@]}" > "$dir/shipped.json"
"$tessel" plan "$src/configs/llama-70b.yaml" --gpus 8 --hardware "$dir/h200.yaml" --format json "${set_[@]}" > "$dir/measured.json"
python3 - "$dir/shipped.json" "$dir/measured.json" <<'PY'
import json, sys
shipped, measured = (json.load(open(p))["candidates"][0] for p in sys.argv[1:])
assert measured["time_s"]["compute"] > 1.1 * shipped["time_s"]["compute"], (shipped["time_s"], measured["time_s"])
PY
# Bad input: no kernels lines; lines of two dtypes.
echo '{"bench": "step"}' > "$dir/other.jsonl"
if python3 "$src/scripts/gpu_calibrate.py" "$src/configs/hardware/h200.yaml" "$dir/other.jsonl" > /dev/null 2> "$dir/err"; then
  fail "no kernels lines accepted"
fi
grep -q "no bench/cuda_kernels.sh lines" "$dir/err" || { cat "$dir/err"; fail "the error does not say what is missing"; }
sed 's/"bf16"/"fp32"/' "$dir/kernels_llama-1b.jsonl" | head -1 > "$dir/kernels_fp32.jsonl"
if python3 "$src/scripts/gpu_calibrate.py" "$src/configs/hardware/h200.yaml" "$dir/kernels_llama-1b.jsonl" "$dir/kernels_fp32.jsonl" \
  > /dev/null 2> "$dir/err"; then fail "two dtypes accepted"; fi
grep -q "several dtypes (bf16, fp32)" "$dir/err" || { cat "$dir/err"; fail "the dtype error"; }
# summary.json carries the constants and tune's ratios.
cat > "$dir/tune.txt" <<'TXT'
  #  layout                                                            predicted s   measured s     ratio
  1  tp 1 x pp 1 x dp 1, micro 8, zero 0, none                                0.21         0.25      1.19
  2  tp 1 x pp 1 x dp 1, micro 4, zero 0, none                                0.22         0.27      1.23
TXT
python3 "$src/scripts/gpu_summary.py" "$dir" abc1234 "$(date +%s)" > "$dir/summary.json"
python3 - "$dir/summary.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))["calibrate"]
assert c["gemm_efficiency"] == 0.708 and c["memory_efficiency"] == 0.812 and c["attention_efficiency"] == 0.2, c
assert c["tune_ratios"] == [1.19, 1.23], c
PY
echo "gpu calibrate: ok"
