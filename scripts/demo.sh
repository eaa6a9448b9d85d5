#!/usr/bin/env bash
# The demo: the King James Bible (Debian's bible-kjv) → a byte-level dataset → a small
# LLaMA-style model trained for a few minutes on this CPU → a generated sample.
set -euo pipefail
build=${1:-build}
tessel="$build/tessel"
work=runs/demo
text=$work/text
mkdir -p "$text"

if [ ! -f "$work/data/kjv_train.idx" ]; then
  echo "== dumping the King James Bible with \`bible\` and splitting it into chapters"
  bible gen1:1-rev22:21 | awk -v dir="$text" '
    /^[0-9A-Za-z ]+ [0-9]+$/ && prev == "" { n++; file = sprintf("%s/%04d.txt", dir, n) }
    { if (file) print > file; prev = $0 }'
  echo "== preparing the dataset (byte tokenizer, 2% of chapters held out for validation)"
  mkdir -p "$work/data"
  "$tessel" data prepare --input "$text"/*.txt --tokenizer bytes --out "$work/data/kjv" --val-fraction 0.02
fi

echo "== training configs/demo.yaml (progress every 10 steps)"
"$tessel" train configs/demo.yaml --set run.out_dir=$work/run checkpoint.resume=none

echo "== sample from the trained model"
"$tessel" generate "$work/run/checkpoints" --prompt "And God said" --tokens 300 --temperature 0.8 --seed 1
