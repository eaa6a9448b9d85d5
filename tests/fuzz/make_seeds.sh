#!/usr/bin/env bash
# Regenerates the committed seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/) from
# real files: configs, a tiny model's checkpoint and its Hugging Face export, a prepared
# dataset, an llm.c shard, JSON lines, text and command lines. Seeds stay small (a few KiB):
# libFuzzer's inputs are at most as long as the longest seed unless told otherwise.
#   tests/fuzz/make_seeds.sh TESSEL_BINARY
set -euo pipefail
tessel=$1
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
corpus=$here/corpus
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=1
rm -rf "$corpus"
mkdir -p "$corpus"/{config,safetensors,manifest,megatron,llmc,json,gpt2,hf_config,cli}

# config: shipped configs and the same with --set overrides after NUL bytes.
cp "$root/configs/demo.yaml" "$corpus/config/demo.yaml"
cp "$root/configs/llama-7b.yaml" "$corpus/config/llama-7b.yaml"
{ cat "$root/configs/gpt2-124m.yaml"; printf '\0optim.lr=1e-3\0parallel.tp=2\0batch.micro=4'; } > "$corpus/config/overrides"

# A tiny dataset, a two-step run with a checkpoint, and its Hugging Face export (GPT-2 and LLaMA).
for i in 1 2 3; do printf 'In the beginning %d was the word.\nAnd the word was with us.\n' "$i" > "$work/$i.txt"; done
"$tessel" data prepare --input "$work"/*.txt --tokenizer bytes --out "$work/ds" > /dev/null
for arch in gpt2 llama; do
  cat > "$work/$arch.yaml" <<YAML
run: {steps: 2, seed: 1, out_dir: $work/run_$arch}
model: {arch: $arch, vocab_size: 260, seq_len: 8, layers: 1, d_model: 8, heads: 2, ffn_dim: 16}
batch: {global: 1, micro: 1}
data: {train: [$work/ds_train], tokenizer: bytes}
checkpoint: {every: 2}
logging: {tensorboard: false}
YAML
  "$tessel" train "$work/$arch.yaml" > /dev/null 2>&1
  cp "$work/run_$arch/checkpoints/step_00000002/manifest.pb" "$corpus/manifest/$arch.pb"
  "$tessel" ckpt export "$work/run_$arch" --format hf --out "$work/hf_$arch" > /dev/null
  cp "$work/hf_$arch/config.json" "$corpus/hf_config/$arch.json"
  cp "$work/hf_$arch/config.json" "$corpus/json/hf_$arch.json"
  cp "$work/hf_$arch/model.safetensors" "$corpus/safetensors/$arch.safetensors"
done

# megatron: the .bin's size (4 bytes, little-endian) then the .idx.
python3 - "$work/ds_train" "$corpus/megatron/bytes" <<'PY'
import os, struct, sys
prefix, out = sys.argv[1], sys.argv[2]
with open(out, "wb") as f:
    f.write(struct.pack("<I", os.path.getsize(prefix + ".bin")))
    f.write(open(prefix + ".idx", "rb").read())
PY
python3 - "$corpus/megatron/empty" <<'PY'
import struct, sys
# A valid dataset of no documents: magic, version 1, dtype u16, 0 sequences, 1 document index.
idx = b"MMIDIDX\x00\x00" + struct.pack("<Q", 1) + bytes([8]) + struct.pack("<QQ", 0, 1) + struct.pack("<q", 0)
open(sys.argv[1], "wb").write(struct.pack("<I", 0) + idx)
PY

# llmc: a GPT-2 shard (u16) and a LLaMA-3 shard (u32), 32 tokens each.
python3 - "$corpus/llmc" <<'PY'
import struct, sys
d = sys.argv[1]
for name, magic, version, fmt in (("gpt2", 20240520, 1, "<32H"), ("llama3", 20240801, 7, "<32I")):
    header = struct.pack("<256i", magic, version, 32, *([0] * 253))
    open(f"{d}/{name}.bin", "wb").write(header + struct.pack(fmt, *range(32)))
PY

# json: a metrics line, a JSONL record, nesting, escapes and numbers.
printf '%s' '{"step":3,"loss":2.5,"lr":[1e-3,null],"name":"a\u00e9\n","ok":true}' > "$corpus/json/metrics"
printf '%s' '{"id": 7, "text": "Hello \"world\" \ud83d\ude00", "meta": {"src": [1, 2.5e-3, false]}}' > "$corpus/json/record"
printf '%s' '[[[{"a":{"b":[-0.0,1E+308,-9223372036854775808,18446744073709551616]}}]]]' > "$corpus/json/numbers"

# gpt2: English, code, Unicode, invalid UTF-8 and the end-of-text token's spelling.
printf '%s' "Hello world! It's 2024, and we're testing GPT-2's BPE: don't  stop." > "$corpus/gpt2/english"
printf '%s\n' 'int main() { return x->y[3] + 0x1F; }  // comment' > "$corpus/gpt2/code"
printf '%s' 'Ünïcödé 日本語 😀 <|endoftext|> Ω≈ç' > "$corpus/gpt2/unicode"
printf 'bad \xff\xfe utf8 \xc3\x28 \xe2\x82 end' > "$corpus/gpt2/invalid_utf8"

# cli: the hostfile's contents, then the arguments of `tessel launch`.
printf 'node1 slots=2\0--nproc-per-node\0002\0run.yaml\0--set\0optim.lr=1e-3\0parallel.tp=2' > "$corpus/cli/set"
printf '# cluster\nnode1 slots=2\nnode2 slots=2\n\0--hostfile\0hosts\0--nproc-per-node=2\0run.yaml\0--dry-run' > "$corpus/cli/hostfile"
printf '\0--hosts\0a,b,,c\0--max-restarts\0003\0run.yaml\0--set\0parallel.dp=auto' > "$corpus/cli/hosts"

find "$corpus" -type f | sort | while read -r f; do printf '%8d %s\n' "$(stat -c %s "$f")" "${f#$root/}"; done
