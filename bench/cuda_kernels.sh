#!/usr/bin/env bash
# Tessel's CUDA kernels against PyTorch's, op by op, at one config's shapes, in one run on the
# same GPU: `tessel bench kernels` then bench/cuda_kernels_torch.py, then one JSON line per op
# with both times and torch_ms / tessel_ms (above 1: Tessel is faster).
#   bench/cuda_kernels.sh BUILD CONFIG [bf16|fp32] [PYTHON]
set -euo pipefail
build=${1:?usage: bench/cuda_kernels.sh BUILD CONFIG [bf16|fp32] [PYTHON]}
config=${2:?usage: bench/cuda_kernels.sh BUILD CONFIG [bf16|fp32] [PYTHON]}
dtype=${3:-bf16}
python=${4:-python3}
here=$(cd "$(dirname "$0")" && pwd)
ours=$(mktemp)
trap 'rm -f "$ours"' EXIT
"$build/tessel" bench kernels "$config" --dtype "$dtype" > "$ours"
grep '"op": "shapes"' "$ours" | "$python" "$here/cuda_kernels_torch.py" | "$python" -c '
import json, sys
ours = {}
for line in open(sys.argv[1]):
    row = json.loads(line)
    if row["op"] != "shapes":
        ours[row["op"]] = row
peers = {json.loads(line)["op"]: json.loads(line) for line in sys.stdin}
# Our rows in our order; a row with a kernel suffix (attention_forward_flash) is set against
# the peer op it implements.
for op, mine in ours.items():
    base = op.replace("_reference", "").replace("_flash", "")
    peer = peers.get(base)
    if peer is None:
        print(json.dumps({"bench": "cuda_kernels", "config": mine["config"], "dtype": mine["dtype"], "op": op,
                          "tessel_ms": mine["ms"], "torch_ms": None}))
        continue
    out = {"bench": "cuda_kernels", "config": mine["config"], "dtype": mine["dtype"], "op": op,
           "tessel_ms": mine["ms"], "torch_ms": peer["ms"], "torch_over_tessel": round(peer["ms"] / mine["ms"], 3)}
    for key in ("tflops", "gbps"):
        if key in mine:
            out["tessel_" + key], out["torch_" + key] = mine[key], peer.get(key)
    print(json.dumps(out))
' "$ours"
