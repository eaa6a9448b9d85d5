#!/usr/bin/env bash
# scripts/gpu_env.sh, which a GPU machine without Debian's -dev packages sources from the
# bundle: it unpacks the bundled .deb files into a prefix (dpkg -x, or ar and tar where there
# is no dpkg, with the same result), points pkg-config files at the prefix, links OpenMPI's
# commands, exports the search paths, and marks the prefix done only when every package
# unpacked. Runs on packages built here with dpkg-deb (no network).
#   tests/launch/gpu_env_check.sh SOURCE_DIR
set -euo pipefail
src=$(cd "${1:?usage: gpu_env_check.sh SOURCE_DIR}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# Two small packages, compressed two ways, shaped like the bundle's.
make_deb() {  # name compression
  local root="$work/pkg-$1"
  mkdir -p "$root/DEBIAN" "$root/usr/lib/x86_64-linux-gnu/pkgconfig" "$root/usr/bin"
  printf 'Package: %s\nVersion: 1.0\nArchitecture: amd64\nMaintainer: t <t@t>\nDescription: t\n' "$1" > "$root/DEBIAN/control"
  printf 'prefix=/usr\nlibdir=${prefix}/lib\nName: %s\nVersion: 1.0\nDescription: t\n' "$1" \
    > "$root/usr/lib/x86_64-linux-gnu/pkgconfig/$1.pc"
  echo "library $1" > "$root/usr/lib/x86_64-linux-gnu/lib$1.so.1"
  dpkg-deb -Z"$2" --root-owner-group --build "$root" "$work/bundle/debs/$1.deb" >/dev/null
}
mkdir -p "$work/bundle/debs"
make_deb alpha xz
make_deb beta gzip
printf '#!/bin/sh\necho orterun\n' > "$work/pkg-beta/usr/bin/mpirun.openmpi"
chmod +x "$work/pkg-beta/usr/bin/mpirun.openmpi"
dpkg-deb -Zgzip --root-owner-group --build "$work/pkg-beta" "$work/bundle/debs/beta.deb" >/dev/null
cp "$src/scripts/gpu_env.sh" "$work/bundle/"

# With dpkg, and with dpkg hidden (ar and tar).
bash -c "source '$work/bundle/gpu_env.sh' '$work/with-dpkg' && echo \"\$CMAKE_PREFIX_PATH|\$OPAL_PREFIX|\$PKG_CONFIG_PATH\"" \
  > "$work/env-dpkg"
bash -c "command() { if [ \"\$2\" = dpkg ]; then return 1; fi; builtin command \"\$@\"; }
         source '$work/bundle/gpu_env.sh' '$work/without-dpkg'"
for p in with-dpkg without-dpkg; do
  d="$work/$p"
  [ -f "$d/.unpacked" ] || fail "$p: no .unpacked marker"
  grep -qx "library alpha" "$d/usr/lib/x86_64-linux-gnu/libalpha.so.1" || fail "$p: alpha not unpacked"
  grep -qx "prefix=$d/usr" "$d/usr/lib/x86_64-linux-gnu/pkgconfig/beta.pc" || fail "$p: pkg-config prefix not rewritten"
  [ "$(readlink "$d/usr/bin/mpirun")" = mpirun.openmpi ] || fail "$p: mpirun not linked"
done
diff <(cd "$work/with-dpkg" && find . | sort) <(cd "$work/without-dpkg" && find . | sort) ||
  fail "ar and tar unpacked other files than dpkg -x"
IFS='|' read -r cmake opal pkg < "$work/env-dpkg"
[ "${cmake%%:*}" = "$work/with-dpkg/usr" ] || fail "CMAKE_PREFIX_PATH does not start with the prefix: $cmake"
[ "$opal" = "$work/with-dpkg/usr" ] || fail "OPAL_PREFIX is $opal"
[[ $pkg == "$work/with-dpkg/usr/lib/x86_64-linux-gnu/pkgconfig"* ]] || fail "PKG_CONFIG_PATH is $pkg"

# A damaged package: an error that names it, and no marker, so the next source retries.
echo "not a deb" > "$work/bundle/debs/gamma.deb"
bash -c "source '$work/bundle/gpu_env.sh' '$work/damaged'" 2> "$work/err" || true
grep -q "could not unpack .*gamma.deb" "$work/err" || fail "no message for a damaged package: $(cat "$work/err")"
[ ! -f "$work/damaged/.unpacked" ] || fail "a failed unpack was marked done"
echo "gpu_env.sh: unpack with and without dpkg, pkg-config prefixes, mpirun, paths, damaged package: ok"
