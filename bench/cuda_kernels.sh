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
for line in sys.stdin:
    peer = json.loads(line)
    mine = ours.get(peer["op"])
    if mine is None:
        continue
    out = {"bench": "cuda_kernels", "config": mine["config"], "dtype": mine["dtype"], "op": peer["op"],
           "tessel_ms": mine["ms"], "torch_ms": peer["ms"], "torch_over_tessel": round(peer["ms"] / mine["ms"], 3)}
    for key in ("tflops", "gbps"):
        if key in mine:
            out["tessel_" + key], out["torch_" + key] = mine[key], peer.get(key)
    print(json.dumps(out))
' "$ours"
