#!/usr/bin/env bash
# Hugging Face export and import end to end, for a tiny GPT-2, a tiny LLaMA (grouped-query
# attention, untied head) and two tiny MoE LLaMAs exported as Mixtral (MixtralForCausalLM) and
# Qwen2-MoE (Qwen2MoeForCausalLM: a gated shared expert, a dense first layer, zero q/k/v biases)
# trained a few steps:
#   1. `tessel ckpt export --format hf` writes config.json + model.safetensors that an
#      independent reader (tests/launch/hf_reference.py, checking the safetensors rules) loads,
#      and its reference forward, written from the Hugging Face layout with Debian's
#      python3-torch, gives the loss `tessel eval` gives on the same tokens (within 1e-4);
#   2. import then export again gives byte-identical files, from one file and from shards;
#   3. export refuses a directory holding an export, import one holding checkpoints.
#   tests/launch/hf_export_check.sh TESSEL_BINARY
set -euo pipefail
tessel=$1
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT
export OMP_NUM_THREADS=1
source "$(dirname "$0")/check_lib.sh"
py=/usr/bin/python3  # Debian's, with python3-torch (scripts/setup.sh)
[ -x "$py" ] || py=python3

make_dataset "$tessel" "$dir"
# One window of 33 tokens: every evaluation sample is that window.
printf 'And God said, Let there be light: and.' > "$dir/one.txt"
"$tessel" data prepare --input "$dir/one.txt" --tokenizer bytes --out "$dir/one" > /dev/null

for arch in gpt2 llama mixtral qwen2moe; do
  kv=4 tie=true family=$arch moe="" layers=2
  [ "$arch" != gpt2 ] && kv=2 tie=false family=llama
  # Mixtral: every layer MoE, no shared expert. Qwen2-MoE: a gated shared expert, layers 0 and 2
  # dense (mlp_only_layers), top-k weights not renormalised.
  [ "$arch" = mixtral ] && moe=", moe: {experts: 4, top_k: 2, expert_ffn_dim: 32}"
  [ "$arch" = qwen2moe ] && layers=4 moe=", moe: {experts: 4, top_k: 2, expert_ffn_dim: 16, shared_experts: 1, shared_ffn_dim: 32, shared_gate: true, norm_topk: false, first_dense: 1, every: 2}"
  cat > "$dir/$arch.yaml" <<YAML
run: {steps: 6, log_every: 6, seed: 9}
model: {arch: $family, vocab_size: 260, seq_len: 32, layers: $layers, d_model: 32, heads: 4, kv_heads: $kv, ffn_dim: 64, tie_embeddings: $tie$moe}
batch: {global: 4, micro: 4}
optim: {lr: 3.0e-3, warmup_steps: 1, decay_steps: 6}
data: {train: [{path: $dir/ds_train, weight: 1.0}], tokenizer: bytes}
checkpoint: {every: 0, resume: none}
logging: {tensorboard: false}
YAML
  out=$dir/$arch
  "$tessel" train "$dir/$arch.yaml" --set run.out_dir="$out/run" > "$out.train.log" 2>&1 || { cat "$out.train.log"; fail "$arch: train"; }
  "$tessel" ckpt export "$out/run/checkpoints" --format hf --out "$out/hf" > /dev/null
  tessel_loss=$("$tessel" eval "$out/run/checkpoints" --data "$dir/one_train" --batches 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["loss"])')
  torch_loss=$("$py" "$here/hf_reference.py" "$out/hf" "$dir/one_train" 32 | python3 -c 'import json,sys; print(json.load(sys.stdin)["loss"])')
  python3 -c "import sys; t, r = $tessel_loss, $torch_loss; assert abs(t - r) <= 1e-4 * r, (t, r); print('$arch: tessel eval %.6f, Hugging Face layout in torch %.6f' % (t, r))"

  # Import back and export again: the same bytes, from one file and from shards.
  "$tessel" ckpt import "$out/hf" --out "$out/imported" > /dev/null
  "$tessel" ckpt export "$out/imported" --format hf --out "$out/hf2" > /dev/null
  cmp "$out/hf/model.safetensors" "$out/hf2/model.safetensors" || fail "$arch: import/export changed the weights"
  cmp "$out/hf/config.json" "$out/hf2/config.json" || fail "$arch: import/export changed config.json"
  # Neither mixes with what a directory already holds.
  if "$tessel" ckpt export "$out/run/checkpoints" --format hf --out "$out/hf" > "$out.again.log" 2>&1; then fail "$arch: export over an export"; fi
  grep -q "already holds config.json from an earlier export" "$out.again.log" || { cat "$out.again.log"; fail "$arch: export over an export: message"; }
  if "$tessel" ckpt import "$out/hf" --out "$out/run/checkpoints" > "$out.into.log" 2>&1; then fail "$arch: import into a run's checkpoints"; fi
  grep -q "already holds checkpoints" "$out.into.log" || { cat "$out.into.log"; fail "$arch: import into checkpoints: message"; }
  "$tessel" ckpt export "$out/run/checkpoints" --format hf --out "$out/sharded" --shard-mb 0.05 > /dev/null
  [ -f "$out/sharded/model.safetensors.index.json" ] && [ -f "$out/sharded/model-00002-of-"*.safetensors ] \
    || fail "$arch: --shard-mb 0.05 wrote no shards"
  "$py" "$here/hf_reference.py" "$out/sharded" "$dir/one_train" 32 > /dev/null || fail "$arch: the reference reader refused the shards"
  "$tessel" ckpt import "$out/sharded" --out "$out/from_shards" > /dev/null
  "$tessel" ckpt export "$out/from_shards" --format hf --out "$out/hf3" > /dev/null
  cmp "$out/hf/model.safetensors" "$out/hf3/model.safetensors" || fail "$arch: importing shards changed the weights"
done
echo "export, reference loss, import round trips: ok"
