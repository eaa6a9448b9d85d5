# Sourced on a CUDA machine without Debian's -dev packages, from a folder made by
# scripts/gpu_bundle.sh: unpacks the bundled .deb files into a prefix (once) and exports what
# the build and the runs need to find them. See docs/gpu.md.
#   source .gpu-bundle/gpu_env.sh [PREFIX]     (default PREFIX: /tmp/tessel-prefix)
# Pass PREFIX explicitly when sourcing from a script: `source FILE` without arguments sees the
# calling script's own arguments as $1.
bundle="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prefix="${1:-/tmp/tessel-prefix}"
# A .deb is an ar archive holding data.tar.*: without dpkg, ar and tar unpack it as dpkg -x does.
tessel_unpack_deb() {
  if command -v dpkg >/dev/null; then
    dpkg -x "$1" "$2"
    return
  fi
  local member flag
  member=$(ar t "$1" | grep '^data\.tar') || return 1
  case "$member" in
    *.xz) flag=-J ;; *.zst) flag=--zstd ;; *.gz) flag=-z ;; *) flag= ;;
  esac
  ar p "$1" "$member" | tar -x $flag -C "$2" -f -
}
if [ ! -f "$prefix/.unpacked" ]; then
  mkdir -p "$prefix"
  tessel_ok=1
  for deb in "$bundle"/debs/*.deb; do
    tessel_unpack_deb "$deb" "$prefix" || { echo "gpu_env: could not unpack $deb" >&2; tessel_ok=0; }
  done
  # pkg-config files name their prefix (/usr) outright: point them at where they now are.
  sed -i "s|^prefix=/usr\$|prefix=$prefix/usr|" "$prefix"/usr/lib/x86_64-linux-gnu/pkgconfig/*.pc \
    "$prefix"/usr/share/pkgconfig/*.pc 2>/dev/null || true
  # Marked done only when every package unpacked: a failed unpack is retried next time.
  [ "$tessel_ok" = 1 ] && touch "$prefix/.unpacked"
fi
lib="$prefix/usr/lib/x86_64-linux-gnu"
export PKG_CONFIG_PATH="$lib/pkgconfig:$prefix/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
# OpenMPI's commands are named *.openmpi behind Debian's alternatives, which dpkg -x does not
# set up: link them by hand.
for name in mpirun mpiexec mpicc mpicxx mpic++; do
  [ -d "$prefix/usr/bin" ] || break
  [ -e "$prefix/usr/bin/$name" ] || ln -sf "$name.openmpi" "$prefix/usr/bin/$name"
done
export CMAKE_PREFIX_PATH="$prefix/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export PATH="$prefix/usr/bin:$PATH"
export LD_LIBRARY_PATH="$lib:$lib/openblas-openmp:$lib/openmpi/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# OpenMPI finds its own files (help texts, components, orted) relative to OPAL_PREFIX.
export OPAL_PREFIX="$prefix/usr"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export TESSEL_PREFIX="$prefix"
