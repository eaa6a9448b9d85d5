# Sourced on a CUDA machine without Debian's -dev packages, from a folder made by
# scripts/gpu_bundle.sh: unpacks the bundled .deb files into a prefix (once) and exports what
# the build and the runs need to find them. See docs/gpu.md.
#   source .gpu-bundle/gpu_env.sh [PREFIX]     (default PREFIX: /tmp/tessel-prefix)
bundle="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prefix="${1:-/tmp/tessel-prefix}"
if [ ! -f "$prefix/.unpacked" ]; then
  mkdir -p "$prefix"
  for deb in "$bundle"/debs/*.deb; do dpkg -x "$deb" "$prefix"; done
  # pkg-config files name their prefix (/usr) outright: point them at where they now are.
  sed -i "s|^prefix=/usr\$|prefix=$prefix/usr|" "$prefix"/usr/lib/x86_64-linux-gnu/pkgconfig/*.pc \
    "$prefix"/usr/share/pkgconfig/*.pc 2>/dev/null || true
  touch "$prefix/.unpacked"
fi
lib="$prefix/usr/lib/x86_64-linux-gnu"
export PKG_CONFIG_PATH="$lib/pkgconfig:$prefix/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
# OpenMPI's commands are named *.openmpi behind Debian's alternatives, which dpkg -x does not
# set up: link them by hand.
for name in mpirun mpiexec mpicc mpicxx mpic++; do
  [ -e "$prefix/usr/bin/$name" ] || ln -sf "$name.openmpi" "$prefix/usr/bin/$name"
done
export CMAKE_PREFIX_PATH="$prefix/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export PATH="$prefix/usr/bin:$PATH"
export LD_LIBRARY_PATH="$lib:$lib/openblas-openmp:$lib/openmpi/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# OpenMPI finds its own files (help texts, components, orted) relative to OPAL_PREFIX.
export OPAL_PREFIX="$prefix/usr"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export TESSEL_PREFIX="$prefix"
