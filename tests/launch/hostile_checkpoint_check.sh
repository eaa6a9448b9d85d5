#!/usr/bin/env bash
# Checkpoint and Hugging Face directories crafted to trick their reader are refused with one
# clear error line, in little memory, and never hang (docs/checkpoints.md, "Checks on load"):
#   a. names that leave their directory: a manifest's file name with '..', `latest` with '..',
#      a model.safetensors.index.json shard name with '..';
#   b. a safetensors header length of 50 GB (rank file and HF file), a manifest.pb and an
#      index of 50 GB (sparse files);
#   c. symlink loops: a rank file linked to itself, a step directory `latest` names linked to
#      itself, model.safetensors linked to itself, an imported model's vocab.json linked to itself;
#   d. a Hugging Face directory of pickle weights only.
# `tessel eval` reads the Tessel checkpoints and `tessel ckpt import` the Hugging Face
# directories; each must exit nonzero with exactly one `error:` line naming the problem, at a
# peak RSS under 1 GB, within a time limit.
#   tests/launch/hostile_checkpoint_check.sh TESSEL_BINARY
set -euo pipefail
tessel=$1
dir=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT
export OMP_NUM_THREADS=1
source "$(dirname "$0")/check_lib.sh"

make_dataset "$tessel" "$dir"
cat > "$dir/tiny.yaml" <<YAML
run: {steps: 2, log_every: 1, seed: 3}
model: {arch: llama, vocab_size: 260, seq_len: 16, layers: 2, d_model: 32, heads: 4, kv_heads: 4, ffn_dim: 64}
batch: {global: 2, micro: 2}
optim: {lr: 1.0e-3, warmup_steps: 1}
data: {train: [$dir/ds_train], tokenizer: bytes}
checkpoint: {every: 0, resume: none}
logging: {tensorboard: false}
YAML
"$tessel" train "$dir/tiny.yaml" --set run.out_dir="$dir/run" > "$dir/train.log" 2>&1 || { cat "$dir/train.log"; fail "train"; }
root=$dir/run/checkpoints
step=$root/step_00000002
[ -f "$step/manifest.pb" ] || fail "training left no $step"
"$tessel" ckpt export "$root" --format hf --out "$dir/hf_single" > /dev/null
"$tessel" ckpt export "$root" --format hf --out "$dir/hf_shards" --shard-mb 0.01 > /dev/null
[ -f "$dir/hf_shards/model.safetensors.index.json" ] || fail "the sharded export wrote no index"

# guarded NAME EXPECTED CMD...: runs CMD under a 60 s limit and checks that it fails with exactly
# one `error:` line holding EXPECTED and nothing that says a crash, at a peak RSS under 1 GB.
guarded() {
  local name=$1 expected=$2
  shift 2
  python3 - "$dir/$name.log" "$@" <<'PY' || { cat "$dir/$name.log"; fail "$name: see above"; }
import resource, subprocess, sys
log, cmd = sys.argv[1], sys.argv[2:]
with open(log, "w") as out:
    try:
        rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=60).returncode
    except subprocess.TimeoutExpired:
        print("timed out after 60 s (a hang)")
        sys.exit(1)
rss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"exit {rc}, peak RSS {rss_kib / 1024:.0f} MiB")
if rc == 0:
    sys.exit("accepted: expected a refusal")
if rss_kib >= 1024 * 1024:
    sys.exit(f"peak RSS {rss_kib} KiB is not under 1 GB")
PY
  local errors
  errors=$(grep -c '^error: ' "$dir/$name.log" || true)
  [ "$errors" = 1 ] || { cat "$dir/$name.log"; fail "$name: $errors error lines, expected exactly one"; }
  grep '^error: ' "$dir/$name.log" | grep -qF -- "$expected" \
    || { cat "$dir/$name.log"; fail "$name: the error does not say '$expected'"; }
  if grep -qE 'terminate called|what\(\)|filesystem error|Segmentation|Aborted|core dumped' "$dir/$name.log"; then
    cat "$dir/$name.log"; fail "$name: not a clear error"
  fi
  echo "$name: refused: $(grep '^error: ' "$dir/$name.log" | cut -c1-160)..."
}

# A copy of the good checkpoint root per case; the good one loads (so each refusal is the craft's).
copy_root() { cp -r "$root" "$dir/$1"; echo "$dir/$1"; }
"$tessel" eval "$step" --data "$dir/ds_train" --batches 1 > "$dir/good.log" 2>&1 || { cat "$dir/good.log"; fail "eval of the good checkpoint"; }
"$tessel" ckpt import "$dir/hf_shards" --out "$dir/imported" > "$dir/good_import.log" 2>&1 \
  || { cat "$dir/good_import.log"; fail "import of the good export"; }

# Replaces every FROM in a manifest by TO (the same length, so no protobuf length changes) and
# seals it again with a matching crc32c: crafted, not damaged.
craft_manifest() {
  python3 - "$1" "$2" "$3" <<'PY'
import sys
path, old, new = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
assert len(old) == len(new)
def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF
b = open(path, "rb").read()
# ManifestFile: 08 <format version> 15 <crc32c, 4 bytes little-endian> 1a <length varint> <body>
assert b[0] == 0x08 and b[2] == 0x15 and b[7] == 0x1A, "unexpected manifest layout"
i = 8
while b[i] & 0x80:
    i += 1
i += 1
body = b[i:]
assert old in body, "name not in the manifest"
body = body.replace(old, new)
open(path, "wb").write(b[:3] + crc32c(body).to_bytes(4, "little") + b[7:i] + body)
PY
}

# Sets the 8-byte little-endian header length of a safetensors file to 50 GB.
huge_header() {
  python3 -c "import struct, sys; f = open(sys.argv[1], 'r+b'); f.write(struct.pack('<Q', 50 * 10**9))" "$1"
}

# --- a. names that leave their directory ---------------------------------------------------
c=$(copy_root a_manifest)
craft_manifest "$c/step_00000002/manifest.pb" rank_00000.safetensors ../../../../etc/passwd
guarded a_manifest "manifest.pb, files[0].name: \"../../../../etc/passwd\" has a '..' component" \
  "$tessel" eval "$c/step_00000002" --data "$dir/ds_train"

c=$(copy_root a_latest)
echo "../../run/checkpoints/step_00000002" > "$c/latest"
guarded a_latest "latest: \"../../run/checkpoints/step_00000002\" has a '..' component" \
  "$tessel" eval "$c" --data "$dir/ds_train"

cp -r "$dir/hf_shards" "$dir/a_index"
cp "$dir/hf_shards/model-00001-of-"*.safetensors "$dir/outside.safetensors"
python3 - "$dir/a_index/model.safetensors.index.json" <<'PY'
import json, sys
path = sys.argv[1]
index = json.load(open(path))
first = next(iter(index["weight_map"]))
index["weight_map"][first] = "../outside.safetensors"
json.dump(index, open(path, "w"))
PY
guarded a_index "\"../outside.safetensors\" has a '..' component, which leads out of its directory" \
  "$tessel" ckpt import "$dir/a_index" --out "$dir/a_index_out"

# --- b. headers and files claiming 50 GB ----------------------------------------------------
c=$(copy_root b_rank)
huge_header "$c/step_00000002/rank_00000.safetensors"
guarded b_rank "header length 50000000000 exceeds the safetensors limit" \
  "$tessel" eval "$c/step_00000002" --data "$dir/ds_train"

cp -r "$dir/hf_single" "$dir/b_hf"
huge_header "$dir/b_hf/model.safetensors"
guarded b_hf "header length 50000000000 exceeds the safetensors limit" \
  "$tessel" ckpt import "$dir/b_hf" --out "$dir/b_hf_out"

c=$(copy_root b_manifest)
truncate -s 50000000000 "$c/step_00000002/manifest.pb"  # sparse: claimed, not stored
guarded b_manifest "manifest.pb is 50000000000 bytes; expected at most" \
  "$tessel" eval "$c/step_00000002" --data "$dir/ds_train"

cp -r "$dir/hf_shards" "$dir/b_index"
truncate -s 50000000000 "$dir/b_index/model.safetensors.index.json"
guarded b_index "model.safetensors.index.json is 50000000000 bytes; expected at most" \
  "$tessel" ckpt import "$dir/b_index" --out "$dir/b_index_out"

# --- c. symlink loops -------------------------------------------------------------------------
c=$(copy_root c_rank)
rm "$c/step_00000002/rank_00000.safetensors"
ln -s rank_00000.safetensors "$c/step_00000002/rank_00000.safetensors"
guarded c_rank "\"rank_00000.safetensors\" is a symlink loop" \
  "$tessel" eval "$c/step_00000002" --data "$dir/ds_train"

c=$(copy_root c_step)
ln -s step_00000009 "$c/step_00000009"
echo step_00000009 > "$c/latest"
guarded c_step "latest: \"step_00000009\" is a symlink loop" "$tessel" eval "$c" --data "$dir/ds_train"
guarded c_step_direct "is a symlink loop" "$tessel" eval "$c/step_00000009" --data "$dir/ds_train"

cp -r "$dir/hf_single" "$dir/c_hf"
rm "$dir/c_hf/model.safetensors"
ln -s model.safetensors "$dir/c_hf/model.safetensors"
guarded c_hf "\"model.safetensors\" is a symlink loop" "$tessel" ckpt import "$dir/c_hf" --out "$dir/c_hf_out"

cp -r "$dir/hf_single" "$dir/c_tokenizer"
ln -s vocab.json "$dir/c_tokenizer/vocab.json"
printf '#version: 0.2\n' > "$dir/c_tokenizer/merges.txt"
guarded c_tokenizer "\"vocab.json\" is a symlink loop" "$tessel" ckpt import "$dir/c_tokenizer" --out "$dir/c_tokenizer_out"

# --- d. pickle weights only -------------------------------------------------------------------
mkdir "$dir/d_pickle"
cp "$dir/hf_single/config.json" "$dir/d_pickle/"
printf 'not really a pickle, but it is never opened' > "$dir/d_pickle/pytorch_model.bin"
guarded d_pickle "Tessel never loads pickle files (.bin, .pt, .pth, .ckpt), because loading one can execute code" \
  "$tessel" ckpt import "$dir/d_pickle" --out "$dir/d_pickle_out"

echo "hostile checkpoints: every crafted directory refused with one clear error, under 1 GB, without a hang"
