#!/usr/bin/env bash
# The one command a lent GPU runs (docs/gpu.md, "The GPU window"): it builds Tessel's CUDA
# backend from the bundle (scripts/gpu_bundle.sh) and measures everything a GPU can tell, in
# stages that each run under their own timeout, so that one call of at most 10 minutes returns
# every figure that could be had:
#   probe      the machine: GPU, driver, nvcc, gcc, cmake, where NCCL and cuDNN are
#   build      configure and build (stops the window if the CUDA backend or NCCL is off)
#   tests      every [gpu] test case
#   layouts    tp, pp and tp x pp x dp with 2, 4 and 8 ranks sharing the GPU through the staged
#              communicator, fp32 and bf16, against the CPU's curve (scripts/gpu_layouts.sh)
#   kernels    tessel bench kernels against PyTorch's kernels, gpt2-124m and llama-1b
#   calibrate  those rates as the h200 profile's measured constants (scripts/gpu_calibrate.py:
#              h200.yaml in the archive, to commit as configs/hardware/h200.yaml), then tessel
#              tune of a small model on the GPU against that profile (its predicted / measured
#              ratios in calibration/h200.json)
#   step       the training step against torch_gpt.py --compile, gpt2-124m and llama-1b
#   train      GPT-2 124M trained for TRAIN_STEPS (40) bf16 steps on the demo's text
#   hf         that run exported to Hugging Face and loaded by the real transformers
#              (AutoModelForCausalLM): its loss against `tessel eval` on the same tokens
#   sanitizer  compute-sanitizer memcheck and racecheck on the attention kernels' cases
#              (last: the slowest to run and the least to lose when time is short)
# Results go to one archive, OUT/gpu-window.tar.gz, with OUT/summary.json beside it (every
# figure and each stage's status), both written by an EXIT trap: a stage that times out, or a
# window cut short, still returns what ran. OUT is $OUT on the device machine (the device
# tool's output folder), else ./gpu-window.
#   scripts/gpu_window.sh BUNDLE [STAGE...]      (default: every stage, in the order above)
# Environment: WINDOW_S (480): the whole window's budget; a stage gets at most what is left of it
# (less 15 s for the archive), and is skipped when under 20 s are left. TRAIN_STEPS (40).
# STEP_ATTENTION (flash): run.attention of the step and train stages. WINDOW_COMMIT: the commit
# being run, for summary.json (a copied tree's .git may name an older one); else git's HEAD, and
# summary.json also records a digest of every tracked source file's content.
set -uo pipefail
bundle=$(cd "${1:?usage: scripts/gpu_window.sh BUNDLE [STAGE...]}" && pwd)
shift
stages=" ${*:-probe build tests layouts kernels calibrate step train hf sanitizer} "
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/gpu-window}
work=$(mktemp -d /tmp/gpu-window.XXXXXX)
build=$root/build-gpu
started=$(date +%s)
mkdir -p "$out" "$work/logs"
cd "$root" || exit 1

# --- bookkeeping: one line per stage in stages.tsv (name, status, seconds), logs in logs/ ---
finish() {
  local code=$?
  local commit=${WINDOW_COMMIT:-$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)}
  commit="$commit, sources $(cd "$root" && find CMakeLists.txt core data optim parallel train launch tests scripts configs bench \
    -type f \( -name '*.h' -o -name '*.cc' -o -name '*.cu' -o -name '*.cuh' -o -name '*.sh' -o -name '*.py' -o -name '*.yaml' -o -name 'CMakeLists.txt' \) \
    2>/dev/null | sort | xargs sha256sum | sha256sum | cut -c1-12)"
  python3 "$root/scripts/gpu_summary.py" "$work" "$commit" "$started" > "$work/summary.json" 2> "$work/logs/summary.err" ||
    echo '{"error": "gpu_summary.py failed"}' > "$work/summary.json"
  cp "$work/summary.json" "$out/summary.json"
  tar -czf "$out/gpu-window.tar.gz" -C "$work" . 2>/dev/null
  echo "gpu_window: $(($(date +%s) - started)) s; results in $out/gpu-window.tar.gz and $out/summary.json"
  exit "$code"
}
trap finish EXIT
trap 'exit 143' TERM INT

stopped=""  # set when a stage makes the later ones pointless (no CUDA backend)
# run_stage NAME TIMEOUT_S COMMAND...: runs COMMAND with its output in logs/NAME.log (its tail
# shown), under `timeout`, and records ok / failed / timeout / skipped.
run_stage() {
  local name=$1 limit=$2
  shift 2
  if [[ $stages != *" $name "* ]]; then return 0; fi
  if [ -n "$stopped" ]; then
    printf '%s\tskipped\t0\t%s\n' "$name" "$stopped" >> "$work/stages.tsv"
    return 0
  fi
  local t0 status left
  t0=$(date +%s)
  left=$((${WINDOW_S:-480} - (t0 - started) - 15))
  if [ "$left" -lt 20 ]; then
    printf '%s\tskipped\t0\t%s\n' "$name" "no time left in WINDOW_S" >> "$work/stages.tsv"
    echo "== $name: skipped, no time left"
    return 0
  fi
  [ "$left" -lt "$limit" ] && limit=$left
  echo "== $name (up to ${limit} s)"
  # `timeout` runs programs, not shell functions: the stage runs in a child bash, which sees the
  # exported functions and variables below.
  timeout --kill-after=10 "$limit" bash -o pipefail -c "$*" > "$work/logs/$name.log" 2>&1
  status=$?
  local state=ok
  [ $status -ne 0 ] && state=failed
  [ $status -eq 124 ] || [ $status -eq 137 ] && state=timeout
  printf '%s\t%s\t%s\t%s\n' "$name" "$state" "$(($(date +%s) - t0))" "exit $status" >> "$work/stages.tsv"
  tail -n 8 "$work/logs/$name.log"
  echo "== $name: $state in $(($(date +%s) - t0)) s"
  return $status
}

# --- stages ---
probe() {
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  nvidia-smi -L
  nvcc --version | tail -2
  gcc --version | head -1
  cmake --version | head -1
  ninja --version
  python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
  command -v compute-sanitizer && compute-sanitizer --version | tail -1
  echo "nccl: $(ldconfig -p | grep -o '/[^ ]*libnccl.so[^ ]*' | head -3 | tr '\n' ' ')"
  find /usr/local/cuda*/lib* /usr/lib/x86_64-linux-gnu -maxdepth 2 -name 'libnccl.so*' 2>/dev/null | head -3
  echo "cudnn: $(ldconfig -p | grep -o '/[^ ]*libcudnn.so[^ ]*' | head -3 | tr '\n' ' ')"
  find /usr/local/cuda*/include /usr/include -maxdepth 1 -name 'cudnn*.h' 2>/dev/null | head -2
  python3 -c 'import nvidia, os; print("python nvidia wheels:", sorted(os.listdir(os.path.dirname(nvidia.__path__[0] + "/x"))))' 2>/dev/null
  nproc
}

build_all() {
  # shellcheck source=/dev/null
  source "$bundle/gpu_env.sh" "${TESSEL_PREFIX:-/tmp/tessel-prefix}"
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release || return 1
  grep -q "Tessel: CUDA backend ON" "$build/CMakeCache.txt" 2>/dev/null || true
  cmake --build "$build" --target tessel tests_core tests_optim tests_train tests_parallel || return 1
  ldd "$build/tessel" | grep "not found" && { echo "gpu_window: shared libraries missing above"; return 1; }
  return 0
}

gpu_tests() {
  local status=0
  for t in tests_core tests_optim tests_train tests_parallel; do
    "$build/tests/$t" "[gpu]" --durations yes -r compact > "$work/logs/tests_$t.txt" 2>&1 || status=1
    tail -n 3 "$work/logs/tests_$t.txt"
  done
  return $status
}

sanitizer() {
  command -v compute-sanitizer > /dev/null || { echo "compute-sanitizer: not on this machine"; return 1; }
  local status=0
  for tool in memcheck racecheck; do
    echo "-- $tool"
    timeout 60 compute-sanitizer --tool "$tool" --error-exitcode 7 "$build/tests/tests_core" "*flash*" > "$work/logs/sanitizer_$tool.txt" 2>&1
    local s=$?
    tail -n 4 "$work/logs/sanitizer_$tool.txt"
    echo "$tool: exit $s"
    [ $s -ne 0 ] && status=1
  done
  return $status
}

layouts() {
  # tessel launch runs the bundle's mpirun: its PATH and OPAL_PREFIX (each stage is its own shell).
  # shellcheck source=/dev/null
  source "$bundle/gpu_env.sh" "${TESSEL_PREFIX:-/tmp/tessel-prefix}"
  scripts/gpu_layouts.sh "$build/tessel" cuda /tmp/tessel-window-layouts > "$work/layouts.jsonl"
  local status=$?
  cat "$work/layouts.jsonl"
  return $status
}

kernels() {
  local status=0
  for name in gpt2-124m llama-1b; do
    bench/cuda_kernels.sh "$build" "configs/$name.yaml" bf16 python3 > "$work/kernels_$name.jsonl" 2> "$work/logs/kernels_$name.err" || status=1
    cat "$work/kernels_$name.jsonl"
  done
  return $status
}

calibrate() {
  ls "$work"/kernels_*.jsonl > /dev/null 2>&1 || { echo "no output of the kernels stage"; return 1; }
  local device
  device=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
  python3 scripts/gpu_calibrate.py configs/hardware/h200.yaml "$work"/kernels_*.jsonl --date "$(date -u +%F)" \
    --commit "${WINDOW_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null)}" --device "${device:-GPU}" \
    > "$work/h200.yaml" 2> "$work/calibrate.json" || { cat "$work/calibrate.json"; return 1; }
  cat "$work/calibrate.json"
  TESSEL_CALIBRATION_DIR="$work/calibration" "$build/tessel" tune configs/gpt2-124m.yaml --gpus 1 \
    --hardware "$work/h200.yaml" --top 3 --steps 5 --set run.device=cuda precision.compute=bf16 \
    run.attention="${STEP_ATTENTION:-flash}" batch.global=32 batch.micro=8 run.out_dir=/tmp/tessel-window-tune \
    | tee "$work/tune.txt"
  return "${PIPESTATUS[0]}"
}

step() {
  local status=0
  for name in gpt2-124m llama-1b; do
    STEP_SET="run.attention=${STEP_ATTENTION:-flash}" bench/step_gpu_vs_torch.sh "$build" "configs/$name.yaml" \
      "$bundle/torch_gpt.py" 989 python3 > "$work/step_$name.jsonl" 2> "$work/logs/step_$name.err" || status=1
    cat "$work/step_$name.jsonl"
  done
  return $status
}

train() {
  [ -f "$bundle/data/kjv_train.idx" ] || { echo "no demo dataset in the bundle (make demo, then scripts/gpu_bundle.sh)"; return 1; }
  rm -rf /tmp/tessel-window-run
  "$build/tessel" train configs/gpt2-124m.yaml --set run.device=cuda precision.compute=bf16 \
    run.attention="${STEP_ATTENTION:-flash}" data.train="$bundle/data/kjv_train" data.val="$bundle/data/kjv_val" \
    data.tokenizer=gpt2 run.steps="${TRAIN_STEPS:-40}" optim.warmup_steps=10 batch.global=8 batch.micro=8 \
    run.log_every=5 run.eval_every=20 run.eval_batches=2 checkpoint.every=0 checkpoint.resume=none \
    logging.tensorboard=false run.out_dir=/tmp/tessel-window-run 2>&1 | grep -v "^  "
  local status=${PIPESTATUS[0]}
  cp /tmp/tessel-window-run/metrics.jsonl "$work/train_metrics.jsonl" 2>/dev/null
  return $status
}

hf() {
  [ -d /tmp/tessel-window-run/checkpoints ] || { echo "no checkpoint from the train stage"; return 1; }
  rm -rf /tmp/tessel-window-hf
  "$build/tessel" ckpt export /tmp/tessel-window-run/checkpoints --format hf --out /tmp/tessel-window-hf || return 1
  python3 scripts/gpu_hf_check.py "$build/tessel" /tmp/tessel-window-run/checkpoints /tmp/tessel-window-hf \
    "$bundle/data/kjv_val" /tmp/tessel-window-one | tee "$work/hf.json"
  return "${PIPESTATUS[0]}"
}

export bundle root out work build
export -f probe build_all gpu_tests sanitizer layouts kernels calibrate step train hf
run_stage probe 30 probe
run_stage build 300 build_all || stopped="the build failed"
if [[ $stages == *" build "* ]] && [ -z "$stopped" ] &&
   ! grep -q "^TESSEL_HAVE_NCCL:INTERNAL=ON\|Tessel: NCCL communicator ON" "$work/logs/build.log"; then
  stopped="the build has no CUDA backend or no NCCL"
  echo "gpu_window: $stopped; see logs/build.log"
fi
if [[ $stages == *" build "* ]] && [ -z "$stopped" ] && ! grep -q "Tessel: CUDA backend ON" "$work/logs/build.log"; then
  stopped="the build has no CUDA backend"
fi
run_stage tests 150 gpu_tests
run_stage layouts 120 layouts
run_stage kernels 120 kernels
run_stage calibrate 90 calibrate
run_stage step 240 step
run_stage train 150 train
run_stage hf 120 hf
run_stage sanitizer 130 sanitizer
exit 0
