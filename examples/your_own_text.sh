#!/usr/bin/env bash
# Train on your own text files with the byte tokenizer, then sample from the result.
#   examples/your_own_text.sh DIR_WITH_TXT_FILES [STEPS]
set -euo pipefail
src=${1:?usage: examples/your_own_text.sh DIR_WITH_TXT_FILES [STEPS]}
steps=${2:-200}
out=runs/own
build/tessel data prepare --input "$src"/*.txt --tokenizer bytes --out $out/data/text --val-fraction 0.05
build/tessel train configs/demo-bytes.yaml --set run.out_dir=$out/run run.steps=$steps optim.warmup_steps=$((steps / 10)) \
  data.train=[$out/data/text_train] data.val=$out/data/text_val checkpoint.resume=none
build/tessel generate $out/run/checkpoints --prompt "The" --tokens 200
