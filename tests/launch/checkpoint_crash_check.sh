#!/usr/bin/env bash
# Crash safety of checkpoints: a run that saves every step (checkpoints large next to a step,
# so most kills land inside a save) is killed with SIGKILL at random moments, several times.
# After every kill, `tessel ckpt verify` accepts the checkpoint root's newest complete
# checkpoint and the next run resumes from it (never from a step_N.tmp directory); at the end
# the pieced-together run's 30 losses equal the uninterrupted run's bitwise. Trials 3, 4, 7 and 8
# save with checkpoint.async (the file written by a background thread while training goes on).
#   tests/launch/checkpoint_crash_check.sh TESSEL_BINARY [TRIALS]
set -euo pipefail
tessel=$1
trials=${2:-8}
dir=$(mktemp -d)
trap 'pkill -KILL -f "$dir/crash" 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT
export OMP_NUM_THREADS=1
source "$(dirname "$0")/check_lib.sh"

make_dataset "$tessel" "$dir"
# About 6.6 M parameters (80 MB of weights and moments per checkpoint) and 32 tokens a step.
cat > "$dir/big.yaml" <<YAML
run: {steps: 30, log_every: 10, seed: 5}
model: {arch: llama, vocab_size: 260, seq_len: 32, layers: 2, d_model: 512, heads: 8, kv_heads: 8, ffn_dim: 1536}
batch: {global: 1, micro: 1}
optim: {lr: 1.0e-3, warmup_steps: 2, decay_steps: 30}
data: {train: [{path: $dir/ds_train, weight: 1.0}], tokenizer: bytes}
checkpoint: {every: 1, keep: 2, resume: auto}
logging: {tensorboard: false}
YAML
"$tessel" train "$dir/big.yaml" --set run.out_dir="$dir/reference" checkpoint.every=0 > "$dir/reference.log" 2>&1 \
  || { cat "$dir/reference.log"; fail "uninterrupted run"; }

# Each trial lets 0-3 saves pass, then kills the run a random 0-40 ms after the next save's
# step_N.tmp directory appears (or at a random moment, on odd trials).
mid_save=0
for trial in $(seq 1 "$trials"); do
  had=$(ls "$dir/crash/checkpoints" 2>/dev/null | grep -c '^step_[0-9]*$' || true)
  async=false
  [ $(( (trial - 1) / 2 % 2 )) = 1 ] && async=true
  "$tessel" train "$dir/big.yaml" --set run.out_dir="$dir/crash" checkpoint.async=$async > "$dir/trial$trial.log" 2>&1 &
  pid=$!
  python3 - "$dir/crash/checkpoints" "$pid" "$trial" <<'PY'
import os, random, sys, time
root, pid, trial = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(trial)
if trial % 2:
    time.sleep(random.uniform(0.6, 2.5))
else:
    def tmp_dirs():  # (name, inode) of every step_N.tmp: a save restarted under the same name is new
        names = os.listdir(root) if os.path.isdir(root) else []
        out = set()
        for n in names:
            try:
                out.add((n, os.stat(os.path.join(root, n)).st_ino)) if n.endswith(".tmp") else None
            except FileNotFoundError:
                pass
        return out
    stale, seen = tmp_dirs(), set()  # left by an earlier kill
    skip, deadline = random.randint(0, 3), time.time() + 30
    while time.time() < deadline:
        new = tmp_dirs() - stale - seen
        if new:
            seen |= new
            if skip == 0:
                time.sleep(random.uniform(0, 0.04))
                break
            skip -= 1
        time.sleep(0.0005)
os.kill(pid, 9)
PY
  wait "$pid" 2>/dev/null || true
  ls "$dir/crash/checkpoints" | grep -q '\.tmp$' && mid_save=$((mid_save + 1))
  if [ "$had" -gt 0 ] && grep -q "\] model: " "$dir/trial$trial.log"; then  # got past start-up
    grep -q "resumed from .*step_[0-9]* at step" "$dir/trial$trial.log" || { cat "$dir/trial$trial.log"; fail "trial $trial did not resume"; }
  fi
  grep "resumed from" "$dir/trial$trial.log" | grep -q '\.tmp' && fail "trial $trial resumed from a .tmp directory"
  if ls "$dir/crash/checkpoints" 2>/dev/null | grep -q '^step_[0-9]*$'; then
    "$tessel" ckpt verify "$dir/crash/checkpoints" > "$dir/verify$trial.log" 2>&1 \
      || { cat "$dir/verify$trial.log"; fail "after kill $trial the newest checkpoint does not verify"; }
  fi
done
"$tessel" train "$dir/big.yaml" --set run.out_dir="$dir/crash" > "$dir/final.log" 2>&1 || { cat "$dir/final.log"; fail "final run"; }
echo "$trials kills, $mid_save of them inside a save (a step_N.tmp was left behind)"
[ "$mid_save" -ge 1 ] || fail "no kill landed inside a save: the test did not test what it says"
python3 - "$dir/reference/metrics.jsonl" "$dir/crash/metrics.jsonl" <<'PY'
import json, sys
ref = [json.loads(l) for l in open(sys.argv[1])]
got = [json.loads(l) for l in open(sys.argv[2])]
assert [r["step"] for r in got] == list(range(1, 31)), [r["step"] for r in got]
for a, b in zip(ref, got):
    assert a["loss"] == b["loss"], (a["step"], a["loss"], b["loss"])
print("the killed and resumed run's 30 losses equal the uninterrupted run's bitwise")
PY
