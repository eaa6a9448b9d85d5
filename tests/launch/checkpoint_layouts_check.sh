#!/usr/bin/env bash
# Distributed checkpoints end to end through `tessel launch`: a tiny GPT-2 (head tied to the
# embedding, so it lives on the first and the last stage) and a tiny LLaMA (grouped-query
# attention) train 20 steps on tp 2 x pp 2 x dp 2 with zero 1, saving at step 10 (GPT-2 with
# checkpoint.async, so steps 11.. run while the save is written). From that
# checkpoint, runs resume to step 20 on
#   (a) the same layout: steps 11-20 bitwise equal to the uninterrupted run;
#   (b) tp 1 x pp 1 x dp 4, (c) one rank, (d) tp 4, (e) pp 2 with stages of 1 and 3 layers
#       (parallel.pipeline_split: [1, 3]), (f) dp 2 with 3 and 1 micro-batches per step
#       (batch.shares: [3, 1]): within 1e-5 relative (fp32, sums split over ranks in another
#       order);
# and `tessel ckpt verify` accepts the checkpoint. Then a piece damaged in one rank's file makes
# every rank fall back to the previous checkpoint.
#   tests/launch/checkpoint_layouts_check.sh TESSEL_BINARY
set -euo pipefail
tessel=$1
dir=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT
export OMP_NUM_THREADS=1
source "$(dirname "$0")/check_lib.sh"

make_dataset "$tessel" "$dir" --val-fraction 0.1

for arch in gpt2 llama; do
  kv=4
  [ "$arch" = llama ] && kv=2
  cat > "$dir/$arch.yaml" <<YAML
run: {steps: 20, log_every: 10, seed: 3}
model: {arch: $arch, vocab_size: 260, seq_len: 32, layers: 4, d_model: 32, heads: 4, kv_heads: $kv, ffn_dim: 64}
batch: {global: 8, micro: 2}
optim: {lr: 3.0e-3, warmup_steps: 2, decay_steps: 20}
parallel: {bucket_mb: 0.01}
data: {train: [{path: $dir/ds_train, weight: 1.0}], tokenizer: bytes}
checkpoint: {every: 10, keep: 5, resume: none}
logging: {tensorboard: false}
YAML
  out=$dir/$arch
  async=false
  [ "$arch" = gpt2 ] && async=true
  "$tessel" launch --nproc-per-node 8 "$dir/$arch.yaml" --set run.out_dir="$out/full" parallel.tp=2 parallel.pp=2 \
    parallel.zero=1 checkpoint.async=$async > "$out.full.log" 2>&1 || { cat "$out.full.log"; fail "$arch: uninterrupted tp 2 x pp 2 x dp 2 run"; }
  "$tessel" ckpt verify "$out/full/checkpoints/step_00000010" > /dev/null || fail "$arch: ckpt verify refused step 10"

  resume() {  # leg, then the launcher's arguments
    local leg=$1; shift
    mkdir -p "$out/$leg/checkpoints"
    cp -r "$out/full/checkpoints/step_00000010" "$out/$leg/checkpoints/"
    "$@" --set run.out_dir="$out/$leg" checkpoint.resume=auto "${layout[@]}" > "$out.$leg.log" 2>&1 \
      || { cat "$out.$leg.log"; fail "$arch: resume leg $leg"; }
    grep -q "resumed from .*step_00000010 at step 10" "$out.$leg.log" || { cat "$out.$leg.log"; fail "$arch: leg $leg did not resume at step 10"; }
  }
  layout=(parallel.tp=2 parallel.pp=2 parallel.zero=1)
  resume a "$tessel" launch --nproc-per-node 8 "$dir/$arch.yaml"
  layout=(parallel.zero=1)
  resume b "$tessel" launch --nproc-per-node 4 "$dir/$arch.yaml"
  layout=()
  resume c "$tessel" train "$dir/$arch.yaml"
  layout=(parallel.tp=4)
  resume d "$tessel" launch --nproc-per-node 4 "$dir/$arch.yaml"
  layout=(parallel.pp=2 "parallel.pipeline_split=[1, 3]")
  resume e "$tessel" launch --nproc-per-node 2 "$dir/$arch.yaml"
  layout=("batch.shares=[3, 1]")
  resume f "$tessel" launch --nproc-per-node 2 "$dir/$arch.yaml"

  python3 - "$arch" "$out" <<'PY'
import json, sys
arch, out = sys.argv[1], sys.argv[2]
def losses(path):
    return {r["step"]: r["loss"] for r in map(json.loads, open(path))}
full = losses(f"{out}/full/metrics.jsonl")
assert sorted(full) == list(range(1, 21)), sorted(full)
for leg in "abcdef":
    got = losses(f"{out}/{leg}/metrics.jsonl")
    assert sorted(got) == list(range(11, 21)), (leg, sorted(got))
    for step in range(11, 21):
        a, b = full[step], got[step]
        if leg == "a":
            assert a == b, (arch, leg, step, a, b)
        else:
            assert abs(a - b) <= 1e-5 * abs(a), (arch, leg, step, a, b)
print(f"{arch}: steps 11-20 resumed on 6 layouts match (same layout bitwise)")
PY
done

# A damaged piece that only some ranks read: the last bytes of world rank 7's file (its ZeRO
# shard of stage 1's moments) in step 20. `ckpt verify` names the file; resume: auto on the
# same layout skips step 20 on every rank, loudly, and continues from step 10.
out=$dir/gpt2
mkdir -p "$out/damaged"
cp -r "$out/full/checkpoints" "$out/damaged/"
printf 'garbage!' | dd of="$out/damaged/checkpoints/step_00000020/rank_00007.safetensors" bs=1 \
  seek=$(( $(stat -c %s "$out/damaged/checkpoints/step_00000020/rank_00007.safetensors") - 8 )) conv=notrunc 2>/dev/null
if "$tessel" ckpt verify "$out/damaged/checkpoints" > "$out.verify.log" 2>&1; then fail "ckpt verify accepted a damaged checkpoint"; fi
grep -q "is damaged: file rank_00007.safetensors, tensor 'optim.exp_avg" "$out.verify.log" || { cat "$out.verify.log"; fail "ckpt verify did not name the damaged file and tensor"; }
"$tessel" launch --nproc-per-node 8 "$dir/gpt2.yaml" --set run.out_dir="$out/damaged" checkpoint.resume=auto run.steps=22 \
  parallel.tp=2 parallel.pp=2 parallel.zero=1 > "$out.damaged.log" 2>&1 || { cat "$out.damaged.log"; fail "resume past a damaged checkpoint"; }
grep -q "step_00000020 FAILED VERIFICATION" "$out.damaged.log" || { cat "$out.damaged.log"; fail "the damaged checkpoint was not skipped loudly"; }
grep -q "resumed from .*step_00000010 at step 10" "$out.damaged.log" || { cat "$out.damaged.log"; fail "did not fall back to step 10"; }
echo "a piece damaged in one rank's part: ckpt verify names it, every rank falls back to step 10"
