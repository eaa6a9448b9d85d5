#!/usr/bin/env bash
# Mixture-of-Experts end to end through `tessel`: a tiny MoE LLaMA (8 experts, top-2, a shared
# expert, capacity 1.25 with re-routing, aux-free balancing, dense first layer) trains 12 steps
# on one rank; the same run goes 4 steps on ep 4 (zero 1), resumes for 4 on ep 2 x tp 2 (sequence
# parallel), then for the last 4 on one rank; and 6 steps with each expert held by two of four
# ranks (ep 2, ZeRO-2), then 6 on one rank. Each leg saves its checkpoint (run.exit_after_steps) and the
# next reads it in its own layout: experts, router and the aux-free selection bias by their
# Hugging Face names. The chained curve equals the straight one within 1e-5 relative, and
# metrics.jsonl records every MoE layer's load. Bad MoE configs get their errors before anything
# runs.
#   tests/launch/moe_check.sh TESSEL_BINARY
set -euo pipefail
tessel=$1
dir=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT
export OMP_NUM_THREADS=1
source "$(dirname "$0")/check_lib.sh"
make_dataset "$tessel" "$dir"
cat > "$dir/moe.yaml" <<YAML
run: {steps: 12, log_every: 1, seed: 5}
model:
  arch: llama
  vocab_size: 260
  seq_len: 32
  layers: 4
  d_model: 32
  heads: 4
  kv_heads: 2
  ffn_dim: 64
  moe: {experts: 8, top_k: 2, shared_experts: 1, expert_ffn_dim: 16, capacity_factor: 1.25, overflow: reroute,
        balance: aux_free, bias_update_rate: 0.01, first_dense: 1}
batch: {global: 8, micro: 2}
optim: {lr: 3.0e-3, warmup_steps: 2, decay_steps: 12}
data: {train: [{path: $dir/ds_train, weight: 1.0}], tokenizer: bytes}
checkpoint: {resume: auto}
logging: {tensorboard: false}
YAML
"$tessel" train "$dir/moe.yaml" --set run.out_dir="$dir/straight" > "$dir/straight.log" 2>&1 \
  || { cat "$dir/straight.log"; fail "the one-rank run"; }
grep -q "aux 0" "$dir/straight.log" || { cat "$dir/straight.log"; fail "the progress line shows no aux loss"; }

chain=$dir/chain
"$tessel" launch --nproc-per-node 4 "$dir/moe.yaml" --set run.out_dir="$chain" run.exit_after_steps=4 parallel.ep=4 \
  parallel.zero=1 > "$dir/leg1.log" 2>&1 || { cat "$dir/leg1.log"; fail "leg 1: ep 4"; }
"$tessel" launch --nproc-per-node 4 "$dir/moe.yaml" --set run.out_dir="$chain" run.exit_after_steps=4 parallel.tp=2 \
  parallel.ep=2 parallel.sequence_parallel=true > "$dir/leg2.log" 2>&1 || { cat "$dir/leg2.log"; fail "leg 2: ep 2 x tp 2"; }
grep -q "resumed from .*step_00000004 at step 4" "$dir/leg2.log" || { cat "$dir/leg2.log"; fail "leg 2 did not resume at step 4"; }
"$tessel" train "$dir/moe.yaml" --set run.out_dir="$chain" > "$dir/leg3.log" 2>&1 || { cat "$dir/leg3.log"; fail "leg 3: one rank"; }
grep -q "resumed from .*step_00000008 at step 8" "$dir/leg3.log" || { cat "$dir/leg3.log"; fail "leg 3 did not resume at step 8"; }
"$tessel" ckpt verify "$chain/checkpoints/step_00000008" > "$dir/verify.log" || { cat "$dir/verify.log"; fail "ckpt verify"; }
# Each expert held by two of four ranks, their moments ZeRO-2 shards of the two: 6 steps, then
# one rank for the rest.
sharded=$dir/sharded
"$tessel" launch --nproc-per-node 4 "$dir/moe.yaml" --set run.out_dir="$sharded" run.exit_after_steps=6 parallel.ep=2 \
  parallel.zero=2 > "$dir/sharded1.log" 2>&1 || { cat "$dir/sharded1.log"; fail "ep 2 in dp 4, zero 2"; }
"$tessel" ckpt verify "$sharded/checkpoints/step_00000006" > "$dir/verify.log" || { cat "$dir/verify.log"; fail "ckpt verify (ep 2, zero 2)"; }
"$tessel" train "$dir/moe.yaml" --set run.out_dir="$sharded" > "$dir/sharded2.log" 2>&1 || { cat "$dir/sharded2.log"; fail "one rank after ep 2, zero 2"; }
grep -q "resumed from .*step_00000006 at step 6" "$dir/sharded2.log" || { cat "$dir/sharded2.log"; fail "no resume at step 6"; }

python3 - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
def records(path):
    return {r["step"]: r for r in map(json.loads, open(path))}
straight, chain = records(f"{d}/straight/metrics.jsonl"), records(f"{d}/chain/metrics.jsonl")
sharded = records(f"{d}/sharded/metrics.jsonl")
assert sorted(straight) == sorted(chain) == sorted(sharded) == list(range(1, 13)), (sorted(straight), sorted(chain))
for step in range(1, 13):
    for other in (chain, sharded):
        a, b = straight[step]["loss"], other[step]["loss"]
        assert abs(a - b) <= 1e-5 * abs(a), ("loss", step, a, b)
    a, b = straight[step]["aux_loss"], chain[step]["aux_loss"]
    assert a == 0 and b == 0, ("aux_free adds no aux loss", step, a, b)
r = straight[12]
# Layer 0 is dense (first_dense: 1); layers 1-3 are MoE: per step 8 sequences x 32 tokens x
# top-2 = 512 assignments over 8 experts, 64 each on average (less what capacity dropped).
assert "moe.0.mean_tokens" not in r, sorted(r)
for layer in (1, 2, 3):
    mean, most = r[f"moe.{layer}.mean_tokens"], r[f"moe.{layer}.max_tokens"]
    assert mean + r[f"moe.{layer}.dropped"] / 8 == 64, (layer, mean, r[f"moe.{layer}.dropped"])
    assert 64 <= most <= 80, (layer, most)  # capacity ceil(1.25 * 64 * 2 / 8) = 20 per micro-batch
    assert r[f"moe.{layer}.bias_norm"] > 0, layer
print("MoE: 12 steps on ep 4, then ep 2 x tp 2, then one rank, and on ep 2 in dp 4 (zero 2) then one rank,",
      "follow the one-rank curve within 1e-5;",
      "loss", straight[1]["loss"], "->", straight[12]["loss"])
PY

# A model no Hugging Face class represents is refused by export, naming what is in the way.
if "$tessel" ckpt export "$chain/checkpoints" --format hf --out "$dir/hf" > "$dir/export.log" 2>&1; then
  fail "exported an aux-free MoE as a Hugging Face model"
fi
grep -qF "model.moe.balance=aux_free (its selection bias) cannot be exported as a Hugging Face Qwen2-MoE model" \
  "$dir/export.log" || { cat "$dir/export.log"; fail "export of an aux-free MoE: no clear error"; }

# Bad MoE configs: refused before anything runs, naming the key and what would work.
expect_error() {  # message, then --set arguments
  local message=$1; shift
  if "$tessel" train "$dir/moe.yaml" --set run.out_dir="$dir/bad" "$@" > "$dir/bad.log" 2>&1; then
    fail "accepted: $*"
  fi
  grep -qF "$message" "$dir/bad.log" || { cat "$dir/bad.log"; fail "for $*: expected '$message'"; }
}
expect_error "model.moe.top_k (9) exceeds model.moe.experts (8)" model.moe.top_k=9
expect_error "model.moe.capacity_factor" model.moe.capacity_factor=-1
expect_error "model.moe.shared_ffn_dim (32) sizes the shared expert, but there is none" model.moe.shared_experts=0 \
  model.moe.shared_ffn_dim=32
expect_error "model.moe needs arch: llama" model.arch=gpt2
expect_error "unknown key 'model.moe.exprts'; did you mean 'model.moe.experts'?" model.moe.exprts=4
expect_error "model.moe.router" model.moe.router=top1
expect_error "the experts' FFN width (18) and the shared FFN's (18) must be divisible by parallel.tp (4)" \
  parallel.tp=4 model.moe.expert_ffn_dim=18
expect_error "model.cla_share (3) must divide model.layers (4)" model.cla_share=3
expect_error "model.moe.experts (8) must be divisible by parallel.ep (3)" parallel.ep=3
expect_error "parallel.ep (2) splits MoE experts, but the model has none" parallel.ep=2 model.moe.experts=0
expect_error "batch.shares is not supported with it" parallel.ep=2 "batch.shares=[2, 2]"
if "$tessel" launch --nproc-per-node 2 "$dir/moe.yaml" --set run.out_dir="$dir/bad" parallel.ep=4 > "$dir/bad.log" 2>&1; then
  fail "ep 4 on 2 data-parallel ranks was accepted"
fi
grep -qF "parallel.ep (4) must divide the data-parallel ranks (2)" "$dir/bad.log" || { cat "$dir/bad.log"; fail "ep above dp: no clear error"; }
expect_error "pipeline stage 1 starts at layer 1, inside a group of model.cla_share (2) layers" model.cla_share=2 \
  parallel.pp=2 "parallel.pipeline_split=[1, 3]"
echo "MoE and CLA config errors: top_k > experts, capacity_factor < 0, a shared width without a shared expert,"
echo "  a GPT-2 arch, a misspelt key, a bad router, tp,"
echo "  cla_share not dividing the layers, a pipeline stage splitting a CLA pair, experts not divisible by ep,"
echo "  ep without experts, ep with batch.shares, ep not dividing the data-parallel ranks"
