#!/usr/bin/env bash
# The conveniences of a first hour with Tessel, through the command as a user types it:
# --version, --help for every command, train --dry-run, dataset globs with size-proportional
# weights, the progress line's interval mean, generate/eval given a run's out_dir, and the
# "no dataset" hint naming the _train prefix that exists.
#   tests/launch/first_hour_check.sh TESSEL_BINARY
set -euo pipefail
tessel=$1
dir=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT
export OMP_NUM_THREADS=1
source "$(dirname "$0")/check_lib.sh"

# --- version and help -------------------------------------------------------------------------
"$tessel" --version | grep -qE '^tessel [0-9]+\.[0-9]+\.[0-9]+ \((unknown|[0-9a-f]{7,}(-dirty)?)\)$' \
  || fail "tessel --version printed '$("$tessel" --version)'"
for command in train launch data generate eval bench plan tune ckpt; do
  "$tessel" "$command" --help > "$dir/help.txt" || fail "tessel $command --help exited non-zero"
  grep -q "usage: tessel $command\|tessel $command " "$dir/help.txt" || { cat "$dir/help.txt"; fail "tessel $command --help"; }
  "$tessel" help "$command" | cmp -s - "$dir/help.txt" || fail "tessel help $command differs from tessel $command --help"
done
"$tessel" data prepare --help | grep -q -- "--val-split documents|tokens" || fail "data prepare --help is not its usage"
if "$tessel" help frobnicate > "$dir/unknown.txt" 2>&1; then fail "tessel help frobnicate exited 0"; fi
grep -q "tessel: unknown command 'frobnicate'" "$dir/unknown.txt" || { cat "$dir/unknown.txt"; fail "tessel help of an unknown command did not say so"; }
if "$tessel" data prepare --input x.txt --out "$dir/x" > "$dir/notok.txt" 2>&1; then fail "prepare without --tokenizer ran"; fi
grep -q "missing --tokenizer bytes|gpt2" "$dir/notok.txt" || { cat "$dir/notok.txt"; fail "no --tokenizer message"; }

# --- datasets: globs, size-proportional weights, the hint for a prefix ------------------------
make_dataset "$tessel" "$dir" --val-fraction 0.2
mkdir "$dir/parts"
for part in big small; do
  n=$([ $part = big ] && echo 30 || echo 10)
  for i in $(seq 1 $n); do printf 'Part %s line %d of some text to train on.\n' $part "$i"; done > "$dir/parts/$part.txt"
  "$tessel" data prepare --input "$dir/parts/$part.txt" --tokenizer bytes --out "$dir/parts/$part" > /dev/null
done
cat > "$dir/tiny.yaml" <<YAML
run: {steps: 10, log_every: 5, seed: 3}
model: {arch: llama, vocab_size: 260, seq_len: 16, layers: 2, d_model: 32, heads: 4, kv_heads: 4, ffn_dim: 64}
batch: {global: 2, micro: 2}
optim: {lr: 1.0e-3, warmup_steps: 50}
data: {train: ["$dir/parts/*_train"], val: $dir/ds_val, tokenizer: bytes}
checkpoint: {every: 0}
logging: {tensorboard: false}
YAML
"$tessel" train "$dir/tiny.yaml" --set run.out_dir="$dir/run" > "$dir/train.log" 2>&1 || { cat "$dir/train.log"; fail "train"; }
# The glob matched both parts; without weights each weighs its tokens (30 lines against 10).
python3 - "$dir" <<'PY' || { cat "$dir/train.log"; exit 1; }
import os, re, sys
d = sys.argv[1]
log = open(f"{d}/train.log").read()
found = re.findall(r"data \d: \S*/parts/(\w+)_train \((\d+) tokens.*?weight ([0-9.]+)", log)
weights = {name: float(w) for name, _, w in found}
tokens = {name: int(n) for name, n, _ in found}
assert set(weights) == {"big", "small"}, f"the glob did not give both parts: {weights}"
share = tokens["big"] / (tokens["big"] + tokens["small"])
assert abs(weights["big"] - share) < 1e-3, f"big weighs {weights['big']}, its share of the tokens is {share:.3f}"
# The progress line at step 5 shows the mean of steps 1-5 of metrics.jsonl.
import json
losses = [json.loads(l)["loss"] for l in open(f"{d}/run/metrics.jsonl")]
line = re.search(r"step +5/10 \| loss ([0-9.]+) \(mean of 5\)", log)
assert line, "no '(mean of 5)' progress line at step 5"
mean = sum(losses[:5]) / 5
assert abs(float(line.group(1)) - mean) < 6e-5, f"progress line {line.group(1)} vs mean {mean:.5f} of {losses[:5]}"
assert abs(losses[4] - mean) > 1e-4, "the test cannot tell the mean from the last step's loss"
# warmup_steps 50 > run.steps 10: clamped with a warning, not refused.
assert "optim.warmup_steps=50 exceeds run.steps=10: warming up over all 10 steps" in log, "no warmup clamp warning"
PY
if "$tessel" train "$dir/tiny.yaml" --set run.out_dir="$dir/nomatch" "data.train=[$dir/nothing_*]" > "$dir/glob.log" 2>&1; then
  fail "a glob matching nothing trained"
fi
grep -q "'$dir/nothing_\*' matches no dataset" "$dir/glob.log" || { cat "$dir/glob.log"; fail "empty glob message"; }
if "$tessel" train "$dir/tiny.yaml" --set run.out_dir="$dir/nods" "data.train=[$dir/ds]" > "$dir/ds.log" 2>&1; then
  fail "a missing dataset trained"
fi
grep -q "wrote $dir/ds_train and $dir/ds_val; did you mean $dir/ds_train?" "$dir/ds.log" \
  || { cat "$dir/ds.log"; fail "the no-dataset hint does not name $dir/ds_train"; }

# --- dry run, and a run's out_dir for generate and eval ---------------------------------------
"$tessel" train "$dir/tiny.yaml" --dry-run > "$dir/dry.txt" || fail "train --dry-run"
grep -q "^parameters by layer:" "$dir/dry.txt" && grep -q "^  layer 1 " "$dir/dry.txt" \
  && grep -q "^memory per rank (planner's estimate for tp 1 x pp 1 x dp 1" "$dir/dry.txt" \
  || { cat "$dir/dry.txt"; fail "dry run report"; }
total=$(awk '$1 == "total" {print $2}' "$dir/dry.txt")
grep -q "model: $total parameters" "$dir/train.log" || fail "the dry run's $total parameters are not the run's"
"$tessel" generate "$dir/run" --prompt "Part" --tokens 8 > "$dir/gen.txt" 2>&1 || { cat "$dir/gen.txt"; fail "generate OUT_DIR"; }
"$tessel" eval "$dir/run" --batches 1 > "$dir/eval.txt" 2>&1 || { cat "$dir/eval.txt"; fail "eval OUT_DIR"; }
grep -q '"loss"' "$dir/eval.txt" || { cat "$dir/eval.txt"; fail "eval printed no loss"; }
echo "first hour: version, help, dry run, globs, weights, mean loss line, out_dir paths all hold"
