#!/usr/bin/env bash
# Tessel's training step on one GPU (bf16) against the PyTorch peer with torch.compile on the
# same model shape, in the same run on the same GPU. Prints each side's JSON line, then one
# line with tokens/s, MFU against the GPU's dense bf16 peak, peak memory and the ratio.
#   bench/step_gpu_vs_torch.sh BUILD CONFIG PEER [PEAK_TFLOPS] [PYTHON]
# PEER: torch_gpt.py (../shared/peers, or the copy scripts/gpu_bundle.sh puts in the bundle).
# PEAK_TFLOPS: dense bf16 peak for MFU (default 989: H100 SXM and H200).
# STEP_SET: more overrides for Tessel's side, e.g. STEP_SET="run.attention=flash".
set -euo pipefail
build=${1:?usage: bench/step_gpu_vs_torch.sh BUILD CONFIG PEER [PEAK_TFLOPS] [PYTHON]}
config=${2:?usage: bench/step_gpu_vs_torch.sh BUILD CONFIG PEER [PEAK_TFLOPS] [PYTHON]}
peer=${3:?usage: bench/step_gpu_vs_torch.sh BUILD CONFIG PEER [PEAK_TFLOPS] [PYTHON]}
peak=${4:-989}
python=${5:-python3}

# The shape, read from the config file (kv_heads and ffn_dim absent from it are passed as 0:
# the peer's own default, which for ffn_dim may differ from Tessel's preset).
read -r arch layers width heads kv ffn vocab seq micro <<<"$(awk '
  /^model:/ {m=1; next} /^batch:/ {b=1; m=0; next} /^[a-z]/ {m=0; b=0}
  m && $1=="arch:" {a=$2} m && $1=="layers:" {l=$2} m && $1=="d_model:" {w=$2}
  m && $1=="heads:" {h=$2} m && $1=="kv_heads:" {k=$2} m && $1=="ffn_dim:" {f=$2}
  m && $1=="vocab_size:" {v=$2} m && $1=="seq_len:" {s=$2} b && $1=="micro:" {mb=$2}
  END {print a, l, w, h, (k ? k : 0), (f ? f : 0), v, s, mb}' "$config")"

# Like for like with the peer, which recomputes nothing and always has an untied head.
tessel_json=$("$build/tessel" bench step "$config" --set run.device=cuda precision.compute=bf16 \
  batch.global="$micro" parallel.recompute=none model.tie_embeddings=false ${STEP_SET:-} --steps 10 --warmup 3 | tail -1)
echo "$tessel_json"
# The peer as it is, run in-process so that its peak memory can be read after it returns.
torch_out=$("$python" - "$peer" --arch "$arch" --layers "$layers" --width "$width" --heads "$heads" --kv-heads "$kv" \
  --ffn "$ffn" --vocab "$vocab" --seq "$seq" --batch "$micro" --device cuda --dtype bf16 --compile \
  --steps 10 --warmup 3 <<'PY'
import json, runpy, sys
import torch
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
print(json.dumps({"peak_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1)}))
PY
)
torch_json=$(echo "$torch_out" | grep '"peer"' | tail -1)
torch_peak=$(echo "$torch_out" | grep '"peak_mib"' | tail -1)
echo "$torch_json"
"$python" - "$tessel_json" "$torch_json" "$peak" "$torch_peak" <<'PY'
import json, sys
t, p, peak = json.loads(sys.argv[1]), json.loads(sys.argv[2]), float(sys.argv[3])
p.update(json.loads(sys.argv[4]))
out = {"bench": "step_gpu_vs_torch", "config": t["config"], "device_name": t.get("device_name"),
       "tessel_tokens_per_s": t["tokens_per_s"], "torch_tokens_per_s": p.get("tokens_per_s"),
       "tessel_mfu": round(t["tflops"] / peak, 4), "torch_mfu": round(p.get("tflops", 0) / peak, 4),
       "tessel_peak_allocated_mib": t.get("peak_allocated_mib"), "torch_peak_mib": p.get("peak_mib"),
       "tessel_over_torch": round(t["tokens_per_s"] / p["tokens_per_s"], 3) if p.get("tokens_per_s") else None}
print(json.dumps(out))
PY
