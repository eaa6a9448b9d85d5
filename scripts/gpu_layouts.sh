#!/usr/bin/env bash
# Tensor and pipeline parallelism with the model on a device, against the CPU, through
# `tessel launch`: ranks that share one GPU (2, 4 and 8 of them) train a tiny GPT-2 (its head
# tied to the embedding, so the first and last stage sum its gradient) for STEPS (10) steps on
# run.device=DEVICE, their groups staged through host memory (parallel.device_comm: staged).
# Each layout runs in fp32 and bf16; its loss curve must match the single-rank CPU fp32 run
# within 1e-4 relative (fp32) and 2% (bf16) at every step.
#   tp2               2 ranks  parallel.tp=2
#   pp2_1f1b          2 ranks  parallel.pp=2, 1f1b
#   pp2_interleaved   2 ranks  parallel.pp=2, interleaved over 2 virtual stages
#   tp2_pp2           4 ranks  tp 2 x pp 2, sequence parallel
#   tp2_pp2_dp2       8 ranks  tp 2 x pp 2 x dp 2, ZeRO 1
# Prints one JSON line per run ({"layout", "precision", "ranks", "worst_rel", "limit", "ok"})
# and exits 1 when any run fails or misses its limit. The GPU window's `layouts` stage runs it.
#   scripts/gpu_layouts.sh TESSEL_BINARY [DEVICE] [OUT_DIR]
# DEVICE: cuda (default); cpu rehearses the same runs and comparisons without a GPU (fp32 only:
# the CPU computes in fp32).
set -uo pipefail
tessel=$(readlink -f "${1:?usage: scripts/gpu_layouts.sh TESSEL_BINARY [DEVICE] [OUT_DIR]}")
device=${2:-cuda}
dir=${3:-$(mktemp -d /tmp/tessel-layouts.XXXXXX)}
steps=${STEPS:-10}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$dir"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
# mpirun refuses root without these (the GPU machine and CI run as root).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
source "$root/tests/launch/check_lib.sh"

make_dataset "$tessel" "$dir"
cat > "$dir/tiny.yaml" <<YAML
run: {steps: $steps, log_every: 1, seed: 5}
model: {arch: gpt2, vocab_size: 260, seq_len: 32, layers: 4, d_model: 64, heads: 4, ffn_dim: 128}
batch: {global: 8, micro: 2}
optim: {lr: 3.0e-3, warmup_steps: 2, decay_steps: $steps}
data: {train: [{path: $dir/ds_train, weight: 1.0}], tokenizer: bytes}
checkpoint: {every: 0, resume: none}
logging: {tensorboard: false}
YAML

status=0
"$tessel" train "$dir/tiny.yaml" --set run.out_dir="$dir/reference" > "$dir/reference.log" 2>&1 ||
  { tail -20 "$dir/reference.log"; echo "gpu_layouts: the CPU reference run failed" >&2; exit 1; }

precisions="fp32 bf16"
[ "$device" = cpu ] && precisions=fp32
# name ranks settings...
run_layout() {
  local name=$1 ranks=$2
  shift 2
  for precision in $precisions; do
    local out="$dir/${name}_$precision" limit=1e-4
    [ "$precision" = bf16 ] && limit=0.02
    if ! "$tessel" launch --nproc-per-node "$ranks" "$dir/tiny.yaml" --set run.out_dir="$out" run.device="$device" \
      precision.compute="$precision" parallel.device_comm=staged "$@" > "$out.log" 2>&1; then
      tail -20 "$out.log" >&2
      printf '{"layout": "%s", "precision": "%s", "ranks": %d, "ok": false, "error": "the run failed"}\n' \
        "$name" "$precision" "$ranks"
      status=1
      continue
    fi
    python3 - "$dir/reference/metrics.jsonl" "$out/metrics.jsonl" "$name" "$precision" "$ranks" "$limit" "$steps" <<'PY' || status=1
import json, sys
ref_path, got_path, name, precision, ranks, limit, steps = sys.argv[1:]
def losses(path):
    return {r["step"]: r["loss"] for r in map(json.loads, open(path)) if "loss" in r and "step" in r}
ref, got = losses(ref_path), losses(got_path)
steps = list(range(1, int(steps) + 1))
missing = [s for s in steps if s not in ref or s not in got]
worst = max((abs(got[s] - ref[s]) / abs(ref[s]) for s in steps if s not in missing), default=float("inf"))
ok = not missing and worst <= float(limit)
print(json.dumps({"layout": name, "precision": precision, "ranks": int(ranks), "worst_rel": worst,
                  "limit": float(limit), "first_loss": got.get(1), "last_loss": got.get(steps[-1]),
                  "missing_steps": missing, "ok": ok}))
sys.exit(0 if ok else 1)
PY
  done
}

run_layout tp2 2 parallel.tp=2
run_layout pp2_1f1b 2 parallel.pp=2 parallel.schedule=1f1b
run_layout pp2_interleaved 2 parallel.pp=2 parallel.schedule=interleaved parallel.virtual_stages=2
run_layout tp2_pp2 4 parallel.tp=2 parallel.pp=2 parallel.sequence_parallel=true
run_layout tp2_pp2_dp2 8 parallel.tp=2 parallel.pp=2 parallel.zero=1
exit $status
