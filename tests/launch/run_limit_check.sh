#!/usr/bin/env bash
# A job's own time limit: run.exit_after_steps stops after that many steps of this run and
# run.exit_after_minutes after that many minutes (here on 2 ranks, which agree on the step), each
# with a checkpoint and exit 0; resumed without the limit, the run follows the uninterrupted
# curve (the schedule of run.steps is unchanged). Negative limits are config errors.
#   tests/launch/run_limit_check.sh TESSEL_BINARY
set -euo pipefail
tessel=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
source "$(dirname "$0")/check_lib.sh"
make_dataset "$tessel" "$dir"
cat > "$dir/tiny.yaml" <<YAML
run: {steps: 8, log_every: 1, seed: 3}
model: {arch: llama, vocab_size: 260, seq_len: 32, layers: 2, d_model: 32, heads: 4, kv_heads: 2, ffn_dim: 64}
batch: {global: 8, micro: 4}
optim: {lr: 3.0e-3, warmup_steps: 2, decay_steps: 8}
data: {train: [{path: $dir/ds_train, weight: 1.0}], tokenizer: bytes}
checkpoint: {resume: auto}
logging: {tensorboard: false}
YAML
"$tessel" train "$dir/tiny.yaml" --set run.out_dir="$dir/full" > "$dir/full.log" 2>&1 || { cat "$dir/full.log"; fail "the uninterrupted run"; }

"$tessel" train "$dir/tiny.yaml" --set run.out_dir="$dir/steps" run.exit_after_steps=3 > "$dir/steps1.log" 2>&1 \
  || { cat "$dir/steps1.log"; fail "run.exit_after_steps did not exit 0"; }
grep -q "run.exit_after_steps (3) reached after 3 steps of this run" "$dir/steps1.log" || { cat "$dir/steps1.log"; fail "no reason given"; }
[ -d "$dir/steps/checkpoints/step_00000003" ] || fail "no checkpoint at step 3"
"$tessel" train "$dir/tiny.yaml" --set run.out_dir="$dir/steps" > "$dir/steps2.log" 2>&1 || { cat "$dir/steps2.log"; fail "the resume"; }
grep -q "resumed from .*step_00000003 at step 3" "$dir/steps2.log" || { cat "$dir/steps2.log"; fail "did not resume at step 3"; }

# Minutes, on 2 ranks: a limit far below one step stops both ranks after their first step.
"$tessel" launch --nproc-per-node 2 "$dir/tiny.yaml" --set run.out_dir="$dir/minutes" run.exit_after_minutes=0.00001 \
  < /dev/null > "$dir/minutes1.log" 2>&1 || { cat "$dir/minutes1.log"; fail "run.exit_after_minutes did not exit 0"; }
grep -q "run.exit_after_minutes (1e-05) reached after 1 steps of this run" "$dir/minutes1.log" \
  || { cat "$dir/minutes1.log"; fail "no minutes reason"; }
[ -d "$dir/minutes/checkpoints/step_00000001" ] || fail "no checkpoint at step 1"
"$tessel" launch --nproc-per-node 2 "$dir/tiny.yaml" --set run.out_dir="$dir/minutes" < /dev/null > "$dir/minutes2.log" 2>&1 \
  || { cat "$dir/minutes2.log"; fail "the 2-rank resume"; }

python3 - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
def losses(path):
    return {r["step"]: r["loss"] for r in map(json.loads, open(path)) if "loss" in r}
full = losses(f"{d}/full/metrics.jsonl")
assert sorted(full) == list(range(1, 9)), sorted(full)
for run in ("steps", "minutes"):
    got = losses(f"{d}/{run}/metrics.jsonl")
    assert sorted(got) == list(range(1, 9)), (run, sorted(got))
    for step in full:
        assert abs(got[step] - full[step]) <= 1e-5 * abs(full[step]), (run, step, got[step], full[step])
PY

expect_config_error() {  # message, then the override
  if "$tessel" train "$dir/tiny.yaml" --set run.out_dir="$dir/bad" "$2" > "$dir/bad.log" 2>&1; then fail "accepted $2"; fi
  grep -q "$1" "$dir/bad.log" || { cat "$dir/bad.log"; fail "expected '$1'"; }
}
expect_config_error "run.exit_after_steps must be at least 0" run.exit_after_steps=-1
expect_config_error "run.exit_after_minutes must be a number >= 0" run.exit_after_minutes=-2
echo "run limits: ok"
