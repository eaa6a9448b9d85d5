#!/usr/bin/env bash
# GPT-2's tokenizer through Hugging Face export and import:
#   1. `tessel ckpt export` of a model trained with data.tokenizer: gpt2 writes vocab.json and
#      merges.txt equal to GPT-2's encoder.json and vocab.bpe (the same mapping and merges),
#      tokenizer_config.json and special_tokens_map.json as transformers reads them; data
#      tokenized from the exported files is byte-identical to data tokenized from GPT-2's own
#      (whose encoder the tokenizer tests check against the reference JavaScript encoder);
#   2. `tessel ckpt import` of that export takes the tokenizer from the files, and `tessel
#      generate` on the import prints the same text, real words, as on the original checkpoint;
#   3. a vocabulary of GPT-2's size without tokenizer files imports as GPT-2's tokenizer.
#   tests/launch/hf_tokenizer_check.sh TESSEL_BINARY GPT2_TOKENIZER_DIR TEXT_FILE...
set -euo pipefail
tessel=$1
gpt2=$2
shift 2
dir=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT
export OMP_NUM_THREADS=1
source "$(dirname "$0")/check_lib.sh"
[ -f "$gpt2/encoder.json" ] || { echo "SKIPPED: no GPT-2 tokenizer files in $gpt2 (make tokenizer fetches them)"; exit 0; }

cat "$@" > "$dir/text.txt"
"$tessel" data prepare --input "$dir/text.txt" --tokenizer gpt2 --tokenizer-dir "$gpt2" --out "$dir/ds" \
  --val-fraction 0.05 --val-split tokens > /dev/null
cat > "$dir/gpt2.yaml" <<YAML
run: {steps: 30, log_every: 10, seed: 4}
model: {arch: gpt2, vocab_size: 50304, seq_len: 32, layers: 1, d_model: 32, heads: 2, ffn_dim: 64}
batch: {global: 4, micro: 4}
optim: {lr: 1.0e-2, warmup_steps: 2}
data: {train: [$dir/ds_train], tokenizer: gpt2, tokenizer_dir: $gpt2}
checkpoint: {every: 0}
logging: {tensorboard: false}
YAML
"$tessel" train "$dir/gpt2.yaml" --set run.out_dir="$dir/run" > "$dir/train.log" 2>&1 || { cat "$dir/train.log"; fail "train"; }
"$tessel" ckpt export "$dir/run" --format hf --out "$dir/hf" > "$dir/export.txt" || fail "export"
for f in vocab.json merges.txt tokenizer_config.json special_tokens_map.json; do
  grep -q "$dir/hf/$f" "$dir/export.txt" || { cat "$dir/export.txt"; fail "export did not list $f"; }
done
python3 - "$dir/hf" "$gpt2" <<'PY'
import json, sys
hf, gpt2 = sys.argv[1], sys.argv[2]
vocab = json.load(open(f"{hf}/vocab.json", encoding="utf-8"))
assert vocab == json.load(open(f"{gpt2}/encoder.json", encoding="utf-8")), "vocab.json is not GPT-2's encoder"
assert len(vocab) == 50257 and vocab["<|endoftext|>"] == 50256 and vocab["Ġthe"] == 262
merges = open(f"{hf}/merges.txt", encoding="utf-8").read().split("\n")
assert merges == open(f"{gpt2}/vocab.bpe", encoding="utf-8").read().split("\n"), "merges.txt is not GPT-2's merges"
assert merges[0].startswith("#version") and merges[1] == "Ġ t", merges[:2]
config = json.load(open(f"{hf}/tokenizer_config.json"))
assert config["tokenizer_class"] == "GPT2Tokenizer" and config["eos_token"] == "<|endoftext|>", config
assert config["model_max_length"] == 32 and config["add_prefix_space"] is False, config
special = json.load(open(f"{hf}/special_tokens_map.json"))
assert special == {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
PY
# The exported files, read under their Hugging Face names, tokenize exactly as GPT-2's.
"$tessel" data prepare --input "$dir/text.txt" --tokenizer gpt2 --tokenizer-dir "$dir/hf" --out "$dir/again" \
  --val-fraction 0.05 --val-split tokens > /dev/null
cmp -s "$dir/ds_train.bin" "$dir/again_train.bin" || fail "the exported tokenizer files tokenize differently"

"$tessel" ckpt import "$dir/hf" --out "$dir/imp" > "$dir/import.txt" || fail "import"
grep -q "tokenizer: GPT-2 byte-level BPE from vocab.json and merges.txt (50257 tokens)" "$dir/import.txt" \
  || { cat "$dir/import.txt"; fail "import did not take the tokenizer files"; }
gen=(--prompt "And the" --tokens 24 --seed 7 --temperature 0.8)
"$tessel" generate "$dir/run" "${gen[@]}" > "$dir/original.txt" 2> /dev/null || fail "generate on the original"
"$tessel" generate "$dir/imp" "${gen[@]}" > "$dir/imported.txt" 2> /dev/null || fail "generate on the import"
cmp -s "$dir/original.txt" "$dir/imported.txt" \
  || { diff "$dir/original.txt" "$dir/imported.txt"; fail "the import generates other text than the original"; }
python3 - "$dir/imported.txt" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8", errors="strict").read()
words = re.findall(r"[A-Za-z]{2,}", text)
assert "\ufffd" not in text and len(words) >= 8, f"not real words: {text!r}"
PY

# No tokenizer files, GPT-2's vocabulary: GPT-2's tokenizer, said so.
mkdir "$dir/bare"
cp "$dir/hf/config.json" "$dir/hf/model.safetensors" "$dir/bare/"
"$tessel" ckpt import "$dir/bare" --out "$dir/imp2" > "$dir/import2.txt" || fail "import without tokenizer files"
grep -q "tokenizer: GPT-2's (.cache/gpt2), from the vocabulary of 50304 ids" "$dir/import2.txt" \
  || { cat "$dir/import2.txt"; fail "import from the vocabulary size"; }
echo "hf tokenizer: exported files are GPT-2's, the import generates the original's words"
