#!/usr/bin/env bash
# Tessel's training step against the PyTorch peer on the same model, in the same run, on this
# CPU. Prints each side's JSON line, then one JSON line with the ratio (PyTorch ms / Tessel ms).
#   bench/step_vs_torch.sh [BUILD_DIR] [CONFIG] [SEQ] [BATCH]
# Needs Debian's python3-torch for the peer (scripts/setup.sh --golden installs it).
set -euo pipefail
build=${1:-build}
config=${2:-configs/gpt2-124m.yaml}
seq=${3:-64}
batch=${4:-4}
threads=$(nproc)
here=$(cd "$(dirname "$0")/.." && pwd)
peer="$here/../shared/peers/torch_gpt.py"
[ -f "$peer" ] || peer="$here/bench/torch_gpt.py"

tessel_json=$("$build/tessel" bench step "$config" --set model.seq_len="$seq" batch.micro="$batch" \
  batch.global="$batch" run.threads="$threads" --steps 5 --warmup 2 2>/dev/null)
echo "$tessel_json"
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo '{"peer": "pytorch", "error": "python3-torch is not installed; run scripts/setup.sh --golden"}'
  exit 0
fi
# The peer takes the model shape as flags: read it from the config Tessel resolved.
read -r arch layers width heads vocab <<<"$(awk '
  /^model:/ {m=1; next} /^[a-z]/ {m=0}
  m && $1=="arch:" {a=$2} m && $1=="layers:" {l=$2} m && $1=="d_model:" {w=$2}
  m && $1=="heads:" {h=$2} m && $1=="vocab_size:" {v=$2}
  END {print a, l, w, h, v}' "$config")"
torch_json=$(/usr/bin/python3 "$peer" --arch "$arch" --layers "$layers" --width "$width" --heads "$heads" \
  --vocab "$vocab" --seq "$seq" --batch "$batch" --threads "$threads" --steps 5 --warmup 2)
echo "$torch_json"
python3 - "$tessel_json" "$torch_json" <<'PY'
import json, sys
t, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({"speedup_vs_pytorch": round(p["ms_per_step"] / t["ms_per_step"], 2),
                  "tessel_ms": t["ms_per_step"], "pytorch_ms": p["ms_per_step"]}))
PY
