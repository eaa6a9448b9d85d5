#!/usr/bin/env bash
# Tessel's GPU checks in one go, for a CUDA machine (docs/gpu.md): builds the CUDA backend
# against a bundle from scripts/gpu_bundle.sh, runs every [gpu] test case (CUDA kernels
# against the CPU, the optimizer's kernels, the caching allocator on the device, the model and
# 20 training steps against the CPU, bf16 against fp32, NCCL on one rank), then for gpt2-124m
# and llama-1b the kernel benchmark against PyTorch and the step against the PyTorch peer,
# then GPT-2 124M trained for TRAIN_STEPS (300) steps of 8 × 1024 tokens in bf16 on the demo's
# text. Logs and JSON go to OUT (default gpu-check/). Exit status: the tests' and the run's.
#   [STAGES="tests kernels step train"] [TRAIN_STEPS=300] scripts/gpu_check.sh BUNDLE [OUT]
#   scripts/gpu_check.sh BUNDLE [OUT]
set -uo pipefail
bundle=$(cd "${1:?usage: scripts/gpu_check.sh BUNDLE [OUT]}" && pwd)
out=${2:-gpu-check}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p "$out"
# shellcheck source=/dev/null
source "$bundle/gpu_env.sh" "${TESSEL_PREFIX:-/tmp/tessel-prefix}"
if [ ! -f .cache/gpt2/encoder.json ] && [ -d "$bundle/gpt2" ]; then
  mkdir -p .cache && cp -r "$bundle/gpt2" .cache/gpt2
fi

{ nvidia-smi -L; nvcc --version | tail -2; } 2>&1 | tee "$out/machine.txt"
build=build-gpu
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release > "$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
grep "Tessel:" "$out/configure.log"
cmake --build "$build" --target tessel tests_core tests_optim tests_launch tests_parallel > "$out/build.log" 2>&1 || { grep -B2 -A8 -m5 "error" "$out/build.log"; exit 1; }
# Libraries the bundle lacks on this machine show here, before any test fails on them.
ldd "$build/tessel" | grep "not found" && echo "gpu_check: missing shared libraries above" >&2

# Stages (space-separated in STAGES, default all): tests, kernels, step, train. A device's
# time is short: run the stages over several calls if one would not fit.
stages=" ${STAGES:-tests kernels step train} "

status=0
if [[ $stages == *" tests "* ]]; then
  for t in tests_core tests_optim tests_launch tests_parallel; do
    "$build/tests/$t" "[gpu]" --durations yes 2>&1 | tee "$out/$t.gpu.txt" | tail -25
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  done
fi

# Each kernel against PyTorch's, then the whole step against the PyTorch peer (torch.compile).
# JSON lines go to the .jsonl files, diagnostics to the .log files.
for config in configs/gpt2-124m.yaml configs/llama-1b.yaml; do
  name=$(basename "$config" .yaml)
  if [[ $stages == *" kernels "* ]]; then
    bench/cuda_kernels.sh "$build" "$config" bf16 python3 2> "$out/kernels_$name.log" | tee "$out/kernels_$name.jsonl"
  fi
  if [[ $stages == *" step "* ]] && [ -f "$bundle/torch_gpt.py" ]; then
    bench/step_gpu_vs_torch.sh "$build" "$config" "$bundle/torch_gpt.py" 989 python3 2> "$out/step_$name.log" |
      tee "$out/step_$name.jsonl"
  fi
done

# A real run: GPT-2 124M, sequences of 1024, bf16, on the demo's text. Its final checkpoint
# (about 1.5 GB) goes to /tmp, not OUT.
if [[ $stages == *" train "* ]] && [ -f "$bundle/data/kjv_train.idx" ]; then
  "$build/tessel" train configs/gpt2-124m.yaml --set run.device=cuda precision.compute=bf16 \
    data.train="$bundle/data/kjv_train" data.val="$bundle/data/kjv_val" run.steps="${TRAIN_STEPS:-300}" \
    optim.warmup_steps=30 batch.global=8 batch.micro=8 run.eval_every=100 run.eval_batches=2 \
    checkpoint.every=0 checkpoint.resume=none checkpoint.dir=/tmp/tessel-gpu-check-checkpoints \
    run.out_dir="$out/gpt2-124m" 2>&1 | grep -v "^  " | tee "$out/train_gpt2_124m.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi
exit $status
