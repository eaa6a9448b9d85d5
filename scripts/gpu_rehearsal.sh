#!/usr/bin/env bash
# Rehearses the GPU window's build here, without a GPU, to prove the bundle complete: in a
# minimal Debian 12 root (debootstrap) holding only what a CUDA image has of its own (gcc, g++,
# make, cmake, ninja, python3, git), with /usr/local/cuda bind-mounted read-only from this machine
# and no Debian -dev package of Tessel's libraries, it sources the bundle's gpu_env.sh, builds
# Tessel with the CUDA backend and NCCL, checks that every shared library resolves, and runs the
# CPU tests (the [gpu] cases skip without a GPU). A library the bundle lacks fails here, not in
# a GPU's scarce minutes.
#   scripts/gpu_rehearsal.sh [BUNDLE] [ROOT]   (defaults: .gpu-bundle, /var/tmp/tessel-rehearsal)
# Needs root (debootstrap, mount, chroot) and Debian's archive. The root's base is kept in
# ROOT.tar and reused. Tests that need what only the GPU machine has (PyTorch for the
# Hugging Face reference, Node.js for the GPT-2 reference encoder) are left out, by name.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bundle=$(cd "${1:-$repo/.gpu-bundle}" && pwd)
root=${2:-/var/tmp/tessel-rehearsal}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
[ "$(id -u)" = 0 ] || { echo "gpu_rehearsal: needs root (debootstrap, mount, chroot)" >&2; exit 2; }
[ -x /usr/local/cuda/bin/nvcc ] || { echo "gpu_rehearsal: no CUDA toolkit in /usr/local/cuda to bind-mount" >&2; exit 2; }
command -v debootstrap > /dev/null || apt-get install -y -qq debootstrap > /dev/null

if [ ! -f "$root.tar" ]; then
  echo "== debootstrap bookworm (minbase + a CUDA image's own tools) into $root"
  rm -rf "$root"
  debootstrap --variant=minbase --include=gcc,g++,make,cmake,ninja-build,python3,git,file,xz-utils,binutils \
    bookworm "$root" "$mirror" > "$root.debootstrap.log" 2>&1 || { tail -20 "$root.debootstrap.log"; exit 1; }
  tar -C "$root" -cf "$root.tar" .
else
  echo "== a fresh root from $root.tar"
  rm -rf "$root" && mkdir -p "$root" && tar -C "$root" -xf "$root.tar"
fi

mounts=()
cleanup() {
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
mount_bind() {  # SOURCE TARGET [ro]
  mkdir -p "$2"
  mount --bind "$1" "$2"
  mounts+=("$2")
  [ "${3:-}" = ro ] && mount -o remount,ro,bind "$2"
  return 0
}
mount_bind /proc "$root/proc"
mount_bind /dev "$root/dev"
mount_bind "$(readlink -f /usr/local/cuda)" "$root/usr/local/cuda" ro

echo "== the committed tree and the bundle into the root"
mkdir -p "$root/work/tessel" "$root/work/bundle"
git -C "$repo" archive HEAD | tar -x -C "$root/work/tessel"
cp -r "$bundle/." "$root/work/bundle/"
if [ -d "$repo/.cache/gpt2" ]; then mkdir -p "$root/work/tessel/.cache" && cp -r "$repo/.cache/gpt2" "$root/work/tessel/.cache/"; fi

# Not in the root: torch (the Hugging Face reference), node (the reference BPE encoder).
exclude="Hugging Face|reference JavaScript encoder"
chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
  bash -euo pipefail -c "
    cd /work/tessel
    source /work/bundle/gpu_env.sh /tmp/tessel-prefix
    for pkg in libyaml-cpp-dev libprotobuf-dev libopenmpi-dev libspdlog-dev catch2; do
      ! dpkg-query -W \$pkg > /dev/null 2>&1 || { echo \"gpu_rehearsal: \$pkg is installed in the root\"; exit 1; }
    done
    echo '== configure'
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release > configure.log 2>&1 || { tail -40 configure.log; exit 1; }
    grep 'Tessel:' configure.log
    grep -q 'Tessel: CUDA backend ON' configure.log || { echo 'gpu_rehearsal: no CUDA backend'; exit 1; }
    grep -q 'Tessel: NCCL communicator ON' configure.log || { echo 'gpu_rehearsal: no NCCL'; exit 1; }
    echo '== build'
    cmake --build build -j \${JOBS:-\$(nproc)} > build.log 2>&1 || { grep -B2 -A8 -m5 error build.log; exit 1; }
    for exe in build/tessel build/tests/tests_core build/tests/tests_train; do
      if ldd \$exe | grep 'not found'; then echo \"gpu_rehearsal: \$exe misses the libraries above\"; exit 1; fi
    done
    echo '== CPU tests'
    cd build && ctest -j \${JOBS:-\$(nproc)} --timeout 900 -E '$exclude' 2>&1 | tail -15
  "
echo "gpu_rehearsal: the bundle builds Tessel with CUDA and NCCL in a bare root, and its CPU tests pass"
