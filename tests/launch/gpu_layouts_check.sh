#!/usr/bin/env bash
# The GPU window's `layouts` stage (scripts/gpu_layouts.sh) rehearsed on the CPU: the same five
# launches (tp 2, pp 2 with 1f1b and interleaved, tp 2 x pp 2, tp 2 x pp 2 x dp 2), the same
# comparison with the single-rank curve, fp32 only. Every layout must report ok, so a GPU
# window finds the stage working and a failure there is the device's, not the script's.
#   tests/launch/gpu_layouts_check.sh TESSEL_BINARY SOURCE_DIR
set -euo pipefail
tessel=$1
source_dir=$2
dir=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT
source "$source_dir/tests/launch/check_lib.sh"

STEPS=4 bash "$source_dir/scripts/gpu_layouts.sh" "$tessel" cpu "$dir/runs" > "$dir/layouts.jsonl" ||
  { cat "$dir/layouts.jsonl"; fail "gpu_layouts.sh failed on the CPU"; }
python3 - "$dir/layouts.jsonl" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
names = [r["layout"] for r in rows]
assert names == ["tp2", "pp2_1f1b", "pp2_interleaved", "tp2_pp2", "tp2_pp2_dp2"], names
for r in rows:
    assert r["ok"] and r["worst_rel"] <= 1e-4 and not r["missing_steps"], r
    assert r["last_loss"] < r["first_loss"], r  # it trains
print("gpu_layouts.sh on the CPU: 5 layouts within 1e-4 of the single-rank curve")
PY
