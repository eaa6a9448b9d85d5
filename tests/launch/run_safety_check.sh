#!/usr/bin/env bash
# A run never silently trains the wrong thing (docs/recipes.md):
#  - a fine-tune started from another checkpoint (checkpoint.resume: PATH), killed and rerun,
#    resumes from its own newest checkpoint, not from PATH;
#  - resuming with a model setting that changes the computation (heads, norm_eps) is refused
#    as incompatible, naming the keys; an explicit optim.decay_steps equal to the effective one
#    gives no warning, a real schedule change does;
#  - a dataset rewritten under the same path is refused on resume unless
#    checkpoint.allow_data_change;
#  - data tokenized with one tokenizer is refused for a model of another;
#  - a second run into an out_dir that a running run holds is refused, naming the holder; once
#    the holder is killed (SIGKILL: no clean-up), the rerun starts.
#   tests/launch/run_safety_check.sh TESSEL_BINARY
set -euo pipefail
tessel=$1
dir=$(mktemp -d)
trap 'pkill -KILL -f "$dir/" 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT
export OMP_NUM_THREADS=1
source "$(dirname "$0")/check_lib.sh"

make_dataset "$tessel" "$dir"
cat > "$dir/tiny.yaml" <<YAML
run: {steps: 4, log_every: 1, seed: 3}
model: {arch: llama, vocab_size: 260, seq_len: 16, layers: 2, d_model: 32, heads: 4, kv_heads: 4, ffn_dim: 64}
batch: {global: 2, micro: 2}
optim: {lr: 1.0e-3, warmup_steps: 1}
data: {train: [$dir/ds_train], tokenizer: bytes}
checkpoint: {every: 1, keep: 10}
logging: {tensorboard: false}
YAML

# --- resume precedence ----------------------------------------------------------------------
"$tessel" train "$dir/tiny.yaml" --set run.out_dir="$dir/base" > "$dir/base.log" 2>&1 || { cat "$dir/base.log"; fail "base run"; }
init="$dir/base/checkpoints/step_00000004"
[ -d "$init" ] || fail "base run left no $init"
# Every checkpoint records the Tessel that wrote it and the datasets the run read.
"$tessel" ckpt inspect "$init" > "$dir/inspect.txt"
grep -qE "^  written by tessel [0-9.]+ \(" "$dir/inspect.txt" || { cat "$dir/inspect.txt"; fail "no version in the manifest"; }
grep -qE "^  train data $dir/ds_train: [0-9]+ bytes, fingerprint [0-9a-f]{8}, tokenizer bytes$" "$dir/inspect.txt" \
  || { cat "$dir/inspect.txt"; fail "no dataset fingerprint in the manifest"; }
# The fine-tune (far longer than the test waits) starts from the base; it is killed once it has
# published step 7 or later of its own.
ft=(--set run.out_dir="$dir/ft" optim.decay_steps=100000 checkpoint.resume="$init")
"$tessel" train "$dir/tiny.yaml" "${ft[@]}" run.steps=100000 > "$dir/ft1.log" 2>&1 &
pid=$!
published() { local name; name=$(cat "$dir/ft/checkpoints/latest" 2>/dev/null || echo step_0); echo $((10#${name#step_} + 0)); }
for _ in $(seq 1 600); do
  [ "$(published)" -ge 7 ] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.1
done
# A second run into the same out_dir while the first trains is refused at its start, naming it.
kill -0 $pid 2>/dev/null || { cat "$dir/ft1.log"; fail "the fine-tune ended before it was killed"; }
if timeout 60 "$tessel" train "$dir/tiny.yaml" "${ft[@]}" run.steps=100000 > "$dir/ft_twice.log" 2>&1; then
  fail "a second run into the fine-tune's out_dir was accepted while the first was running"
fi
grep -q "^error: run.out_dir $dir/ft is in use by another run: pid $pid on host " "$dir/ft_twice.log" \
  || { cat "$dir/ft_twice.log"; fail "the second run does not name the first (pid $pid) holding run.out_dir"; }
kill -KILL $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
grep -q "starting from $init (checkpoint.resume): $dir/ft/checkpoints holds no checkpoint of this run yet" "$dir/ft1.log" \
  || { cat "$dir/ft1.log"; fail "the first fine-tune run does not say it starts from checkpoint.resume"; }
[ "$(published)" -ge 7 ] || { cat "$dir/ft1.log"; fail "the fine-tune published no step 7 or later"; }
newest=$(cat "$dir/ft/checkpoints/latest")  # what `latest` names is what a resume takes
# The rerun (the same command, as after a preemption, told to stop 3 steps on) continues from its
# own newest step.
"$tessel" train "$dir/tiny.yaml" "${ft[@]}" run.steps=$(($(published) + 3)) > "$dir/ft2.log" 2>&1 \
  || { cat "$dir/ft2.log"; fail "rerun"; }
grep -q "resuming from this run's own newest checkpoint $dir/ft/checkpoints/$newest, not from checkpoint.resume=$init" \
  "$dir/ft2.log" || { cat "$dir/ft2.log"; fail "the rerun does not say it takes its own checkpoint over checkpoint.resume"; }
step=$((10#${newest#step_}))
grep -q "resumed from $dir/ft/checkpoints/$newest at step $step" "$dir/ft2.log" \
  || { cat "$dir/ft2.log"; fail "the rerun did not resume from its own step $step"; }
if grep -q "at step 4 (" "$dir/ft2.log"; then fail "the rerun restarted from the init checkpoint"; fi

# --- model and optimizer fingerprints -------------------------------------------------------
run_base() { "$tessel" train "$dir/tiny.yaml" --set run.out_dir="$dir/base" "$@"; }
if run_base model.heads=8 model.kv_heads=8 model.norm_eps=1e-3 > "$dir/heads.log" 2>&1; then
  fail "a heads and norm_eps change on resume was accepted"
fi
grep -q "is incompatible with this run (not damaged)" "$dir/heads.log" || { cat "$dir/heads.log"; fail "not called incompatible"; }
for key in "model.heads: 4 → 8" "model.kv_heads: 4 → 8" "model.norm_eps: 1e-05 → 0.001"; do
  grep -qF "$key" "$dir/heads.log" || { cat "$dir/heads.log"; fail "the refusal does not name '$key'"; }
done
if grep -q "FAILED VERIFICATION" "$dir/heads.log"; then fail "an incompatible checkpoint was reported as damaged"; fi
# The cosine decay over run.steps − warmup = 3 steps, set explicitly: the same schedule, no warning.
run_base run.steps=5 optim.decay_steps=3 > "$dir/decay.log" 2>&1 || { cat "$dir/decay.log"; fail "decay_steps resume"; }
if grep -q "will not follow" "$dir/decay.log"; then cat "$dir/decay.log"; fail "decay_steps at its effective value warned"; fi
run_base run.steps=6 optim.schedule=constant optim.lr=2e-3 optim.weight_decay=0.05 > "$dir/lr.log" 2>&1 \
  || { cat "$dir/lr.log"; fail "lr resume"; }
grep -q "will not follow" "$dir/lr.log" || { cat "$dir/lr.log"; fail "a real schedule change gave no warning"; }
grep -qF "optim.lr: 0.001 → 0.002, optim.schedule: cosine → constant" "$dir/lr.log" || { cat "$dir/lr.log"; fail "the warning does not name optim.lr old → new"; }
grep -qF "optim.weight_decay: 0.1 → 0.05" "$dir/lr.log" || { cat "$dir/lr.log"; fail "weight_decay not named"; }

# --- data fingerprints ----------------------------------------------------------------------
# The same prefix, prepared again from other text (smaller, as in the report that motivated it).
mkdir "$dir/other"
for i in 1 2 3; do printf 'Quite other text %d, shorter.\n' "$i" > "$dir/other/$i.txt"; done
"$tessel" data prepare --input "$dir"/other/*.txt --tokenizer bytes --out "$dir/ds" > /dev/null
if run_base run.steps=8 > "$dir/data.log" 2>&1; then fail "a rewritten dataset was accepted on resume"; fi
grep -q "was trained on other data than this run reads" "$dir/data.log" || { cat "$dir/data.log"; fail "data refusal"; }
grep -q "train dataset 0: $dir/ds_train (" "$dir/data.log" || { cat "$dir/data.log"; fail "the refusal does not name the dataset"; }
grep -q "checkpoint.allow_data_change: true" "$dir/data.log" || fail "the refusal gives no hint"
# On purpose: allowed, with a warning, and the run goes on.
run_base run.steps=8 checkpoint.allow_data_change=true > "$dir/allow.log" 2>&1 || { cat "$dir/allow.log"; fail "allowed change"; }
grep -q "the run continues on other data" "$dir/allow.log" || { cat "$dir/allow.log"; fail "no warning for an allowed change"; }

# --- tokenizer records ----------------------------------------------------------------------
if "$tessel" train "$dir/tiny.yaml" --set run.out_dir="$dir/tok" data.tokenizer=gpt2 model.vocab_size=50304 \
  > "$dir/tok.log" 2>&1; then
  fail "bytes-tokenized data trained a gpt2-tokenizer model"
fi
grep -q "dataset '$dir/ds_train' was tokenized with bytes ($dir/ds_train.tessel.json) but data.tokenizer is gpt2" \
  "$dir/tok.log" || { cat "$dir/tok.log"; fail "tokenizer mismatch message"; }
echo "run safety: precedence, model/optimizer/data fingerprints and tokenizer records hold"
