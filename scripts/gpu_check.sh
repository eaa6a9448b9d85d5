#!/usr/bin/env bash
# Tessel's GPU checks in one go, for a CUDA machine (docs/gpu.md): builds the CUDA backend
# against a bundle from scripts/gpu_bundle.sh, runs every [gpu] test case (CUDA kernels
# against the CPU, the optimizer's kernels, the caching allocator on the device, NCCL on one
# rank), then the kernel benchmark against PyTorch for gpt2-124m and llama-1b. Logs and JSON go
# to OUT (default gpu-check/). Exit status: that of the tests.
#   scripts/gpu_check.sh BUNDLE [OUT]
set -uo pipefail
bundle=$(cd "${1:?usage: scripts/gpu_check.sh BUNDLE [OUT]}" && pwd)
out=${2:-gpu-check}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p "$out"
# shellcheck source=/dev/null
source "$bundle/gpu_env.sh"
if [ ! -f .cache/gpt2/encoder.json ] && [ -d "$bundle/gpt2" ]; then
  mkdir -p .cache && cp -r "$bundle/gpt2" .cache/gpt2
fi

{ nvidia-smi -L; nvcc --version | tail -2; } 2>&1 | tee "$out/machine.txt"
build=build-gpu
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release > "$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
grep "Tessel:" "$out/configure.log"
cmake --build "$build" --target tessel tests_core tests_optim tests_parallel > "$out/build.log" 2>&1 || { grep -B2 -A8 -m5 "error" "$out/build.log"; exit 1; }

status=0
for t in tests_core tests_optim tests_parallel; do
  "$build/tests/$t" "[gpu]" --durations yes 2>&1 | tee "$out/$t.gpu.txt" | tail -25
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done

for config in configs/gpt2-124m.yaml configs/llama-1b.yaml; do
  name=$(basename "$config" .yaml)
  bench/cuda_kernels.sh "$build" "$config" bf16 python3 2>&1 | tee "$out/kernels_$name.jsonl"
done
exit $status
