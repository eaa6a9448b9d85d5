#!/usr/bin/env bash
# The demo: the King James Bible (Debian's bible-kjv) → a token dataset → a small LLaMA-style
# model trained for a few minutes on this CPU → a generated sample. It uses GPT-2's BPE
# tokenizer (configs/demo.yaml) when its files are in .cache/gpt2 (scripts/fetch_gpt2_tokenizer.sh),
# the byte tokenizer (configs/demo-bytes.yaml) otherwise.
#   scripts/demo.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
tessel="$build/tessel"
work=runs/demo
text=$work/text

if [ -f .cache/gpt2/encoder.json ] && [ -f .cache/gpt2/vocab.bpe ]; then
  tokenizer=gpt2 config=configs/demo.yaml sample_tokens=120
else
  tokenizer=bytes config=configs/demo-bytes.yaml sample_tokens=300
  echo "== GPT-2 tokenizer files not found in .cache/gpt2 (scripts/fetch_gpt2_tokenizer.sh fetches them): using the byte tokenizer"
fi
data=$work/data-$tokenizer

if [ ! -f "$text/done" ]; then
  echo "== dumping the King James Bible with \`bible\` and splitting it into chapters"
  rm -rf "$text" && mkdir -p "$text"
  bible gen1:1-rev22:21 | awk -v dir="$text" '
    /^[0-9A-Za-z ]+ [0-9]+$/ && prev == "" { n++; file = sprintf("%s/%04d.txt", dir, n) }
    { if (file) print > file; prev = $0 }'
  touch "$text/done"
fi
if [ ! -f "$data/kjv_train.idx" ]; then
  echo "== preparing the dataset ($tokenizer tokenizer, 2% of chapters held out for validation)"
  mkdir -p "$data"
  "$tessel" data prepare --input "$text"/*.txt --tokenizer $tokenizer --out "$data/kjv" --val-fraction 0.02
fi

echo "== training $config (progress every 10 steps)"
rm -rf "$work/run"   # a fresh run each time: no checkpoint of an earlier demo is left to sample from
"$tessel" train $config --set run.out_dir=$work/run checkpoint.resume=none

echo "== sample from the trained model"
"$tessel" generate "$work/run/checkpoints" --prompt "And God said" --tokens $sample_tokens --temperature 0.8 --seed 1
