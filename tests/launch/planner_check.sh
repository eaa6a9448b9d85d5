#!/usr/bin/env bash
# tessel plan and tessel tune end to end:
#   1. a 70B LLaMA-style model on 64 x h100-sxm and 64 x h800: JSON candidates with the memory
#      and time fields, all within the GPU's memory; the reasons name TP across nodes and the
#      inter-node link's bandwidth; no calibration is announced as such; the best layout's --set
#      line, given back to tessel plan, evaluates exactly that layout;
#   2. warnings: memory over 90% of the GPU's (with --margin 0), a step under 0.1 s (a tiny model
#      on H100s), and none for the 70B model's default plan;
#   3. bad input: an unknown hardware name lists the known ones; a GPU count with no valid
#      factorization and a model that fits no layout say so;
#   4. tessel tune runs the top 3 layouts of a tiny model on this machine, prints predicted
#      against measured and writes a loadable config; its sub-0.1 s steps are not recorded as
#      calibration;
#   5. calibration per model: a record of the tiny model scales its next plan, table, best line
#      and JSON alike; the same record on h100-sxm is not used for the 70B model, and the plan
#      says why; a file of the first format (no model) is read and not used;
#   6. mixed clusters (--cluster): the 70B model on 4 nodes of H800 and 8 of H20 uses every GPU
#      and beats each kind alone and the cluster planned as all H20; on a cluster of this
#      machine's ranks at two speeds, each plan that uses both groups runs under tessel launch
#      exactly as its --set line says, its losses equal to one rank's; bad cluster files and
#      flags are errors naming the file and line.
#   tests/launch/planner_check.sh TESSEL_BINARY SOURCE_DIR
set -euo pipefail
tessel=$1
src=$2
dir=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT
source "$(dirname "$0")/check_lib.sh"
export TESSEL_CALIBRATION_DIR=$dir/calibration OMP_NUM_THREADS=1

for hw in h100-sxm h800; do
  "$tessel" plan "$src/configs/llama-70b.yaml" --gpus 64 --hardware $hw --format json --top 5 > "$dir/$hw.json"
  "$tessel" plan "$src/configs/llama-70b.yaml" --gpus 64 --hardware $hw --top 5 > "$dir/$hw.txt"
  grep -q "tensor parallelism across nodes (tp > 8): .* inter-node link" "$dir/$hw.txt" || { cat "$dir/$hw.txt"; fail "$hw: no TP-across-nodes reason"; }
done
python3 - "$dir/h100-sxm.json" "$dir/h800.json" <<'PY'
import json, sys
h100, h800 = (json.load(open(p)) for p in sys.argv[1:])
for plan, cap in ((h100, 80), (h800, 80)):
    assert plan["gpus"] == 64 and len(plan["candidates"]) == 5, plan.keys()
    cal = plan["calibration"]
    assert not cal["used"] and cal["ratio"] == 1 and cal["note"].startswith("no calibration: "), cal
    assert plan["model"]["parameters"] == 68976648192 and plan["model"]["seq_len"] == 4096, plan["model"]
    assert plan["warnings"] == [], plan["warnings"]
    # The --set line holds every layout knob of the best layout.
    best = plan["candidates"][0]["layout"]
    s = dict(o.split("=", 1) for o in plan["set"])
    assert s == {"parallel.tp": str(best["tp"]), "parallel.pp": str(best["pp"]), "parallel.dp": str(best["dp"]),
                 "parallel.zero": str(best["zero"]), "parallel.schedule": best["schedule"],
                 "parallel.virtual_stages": str(best["virtual_stages"]), "parallel.recompute": best["recompute"],
                 "parallel.sequence_parallel": str(best["sequence_parallel"]).lower(),
                 "batch.micro": str(best["micro"])}, (s, best)
    for c in plan["candidates"]:
        l = c["layout"]
        assert l["tp"] * l["pp"] * l["dp"] == 64, l
        assert 0 < c["memory_gb_per_gpu"] <= cap * 0.9, c
        assert abs(sum(c["memory_gb"].values()) - c["memory_gb_per_gpu"]) < 1e-6 * c["memory_gb_per_gpu"]
        assert c["step_time_s"] > 0 and c["tokens_per_s"] > 0 and 0 < c["mfu"] < 1, c
    times = [c["step_time_s"] for c in plan["candidates"]]
    assert times == sorted(times), times
# The cut NVLink makes the same layouts slower, tensor parallelism most.
assert h800["candidates"][0]["step_time_s"] > h100["candidates"][0]["step_time_s"]
PY

# The printed --set line, given back, fixes every knob: exactly the best layout is evaluated.
set_line=$(grep '^the best layout, for tessel train or tessel launch: --set ' "$dir/h100-sxm.txt" | sed 's/^.*: --set //')
[ -n "$set_line" ] || { cat "$dir/h100-sxm.txt"; fail "no --set line for the best layout"; }
# shellcheck disable=SC2086 # the line is words to split, as a pasted command line would be
"$tessel" plan "$src/configs/llama-70b.yaml" --gpus 64 --hardware h100-sxm --format json --set $set_line > "$dir/again.json"
python3 - "$dir/h100-sxm.json" "$dir/again.json" <<'PY'
import json, sys
plan, again = (json.load(open(p)) for p in sys.argv[1:])
assert again["considered"] == 1 and again["fitting"] == 1, again["considered"]
assert again["candidates"][0]["layout"] == plan["candidates"][0]["layout"], again["candidates"][0]
assert again["candidates"][0]["step_time_s"] == plan["candidates"][0]["step_time_s"]
PY

# Warnings: memory over 90% of the GPU's when the margin allows it; a step under 0.1 s.
grep -q "^warning:" "$dir/h100-sxm.txt" && fail "the default 70B plan warned: $(grep '^warning:' "$dir/h100-sxm.txt")"
"$tessel" plan "$src/configs/llama-70b.yaml" --gpus 64 --hardware h100-sxm --margin 0 > "$dir/margin0.txt"
grep -qE "^warning: the best layout needs [0-9]+ GB per GPU, 9[0-9]% of h100-sxm's 80 GB \(over 90%\).*hint: " \
  "$dir/margin0.txt" || { cat "$dir/margin0.txt"; fail "no warning of memory over 90% of the GPU's"; }

expect_error() {  # message, then the command
  local want=$1; shift
  if "$@" > "$dir/err.txt" 2>&1; then fail "expected an error: $*"; fi
  grep -q "$want" "$dir/err.txt" || { cat "$dir/err.txt"; fail "expected '$want'"; }
}
expect_error "unknown hardware 'h900'; known: a100-80gb, cpu-local, h100-sxm, h20, h200, h800" \
  "$tessel" plan "$src/configs/llama-70b.yaml" --gpus 64 --hardware h900
expect_error "no layout of 7 GPUs fits this model" "$tessel" plan "$src/configs/llama-70b.yaml" --gpus 7 --hardware h100-sxm
expect_error "the model fits no layout of 8 x h100-sxm .* the smallest needs" \
  "$tessel" plan "$src/configs/llama-70b.yaml" --gpus 8 --hardware h100-sxm

cat > "$dir/tiny.yaml" <<YAML
model: {arch: llama, vocab_size: 256, seq_len: 64, layers: 4, d_model: 128, heads: 4, kv_heads: 2, ffn_dim: 256}
batch: {global: 8, micro: 4}
run: {out_dir: $dir/run}
YAML
"$tessel" plan "$dir/tiny.yaml" --gpus 2 --hardware h100-sxm > "$dir/tiny-h100.txt"
grep -qE "^warning: the best layout's predicted step, [0-9.e-]+ s, is under 0.1 s.*hint: " "$dir/tiny-h100.txt" \
  || { cat "$dir/tiny-h100.txt"; fail "no warning of a step too short to predict"; }
"$tessel" tune "$dir/tiny.yaml" --gpus 2 --top 3 --steps 2 --set parallel.recompute=none > "$dir/tune.txt" \
  || { cat "$dir/tune.txt" "$dir/run/tuned.yaml.log"; fail "tune"; }
cat "$dir/tune.txt"
[ "$(grep -cE '^ +[0-9] +tp [0-9]+ x pp .* [0-9.]+ +[0-9.]+ +[0-9.]+$' "$dir/tune.txt")" = 3 ] || fail "tune did not report 3 measured layouts"
grep -q "^parallel:" "$dir/run/tuned.yaml" || fail "no tuned config written"
# Steps under 0.1 s are dominated by overheads: tune must not record them as calibration. (Under a
# sanitizer or on a slow machine the same steps take longer, and then they are recorded.)
shortest=$(grep -E '^ +[0-9] +tp [0-9]+ x pp ' "$dir/tune.txt" | awk '{print $(NF-1)}' | sort -g | head -1)
if awk -v s="$shortest" 'BEGIN {exit !(s < 0.1)}'; then
  grep -q "not recorded as calibration" "$dir/tune.txt" || fail "tune recorded ratios of sub-0.1 s steps"
  [ ! -e "$dir/calibration/cpu-local.json" ] || fail "a calibration file was written"
else
  grep -q "^recorded the ratios in $dir/calibration/cpu-local.json" "$dir/tune.txt" \
    || fail "tune did not record the ratios of steps of $shortest s and more"
  rm "$dir/calibration/cpu-local.json"
fi
# Calibration per model: a record of this tiny model (its shape key as tessel plan's JSON gives
# it) scales its next plan: the table, the best line and the JSON from one calibrated path.
"$tessel" plan "$dir/run/tuned.yaml" --gpus 2 --hardware cpu-local --format json > "$dir/raw.json"
mkdir -p "$dir/calibration"
python3 - "$dir/raw.json" "$dir/calibration" <<'PY'
import json, sys
model = json.load(open(sys.argv[1]))["model"]
for hw in ("cpu-local", "h100-sxm"):
    record = {"format": 2, "hardware": hw, "models": [{"model": model, "ratios": [1.5, 2.5, 2.0]}]}
    json.dump(record, open(f"{sys.argv[2]}/{hw}.json", "w"))
PY
"$tessel" plan "$dir/run/tuned.yaml" --gpus 2 --hardware cpu-local --top 3 > "$dir/after.txt"
"$tessel" plan "$dir/run/tuned.yaml" --gpus 2 --hardware cpu-local --format json > "$dir/after.json"
grep -qE "^times scaled by 2, the median measured / predicted of 3 runs of tessel tune of a [0-9.]+K-parameter llama \(4 layers, d_model 128, seq_len 64, fp32\) on cpu-local" \
  "$dir/after.txt" || { cat "$dir/after.txt"; fail "the plan did not apply the recorded ratios of this model"; }
python3 - "$dir/raw.json" "$dir/after.json" "$dir/after.txt" <<'PY'
import json, re, sys
raw, cal = (json.load(open(p)) for p in sys.argv[1:3])
text = open(sys.argv[3]).read()
assert cal["calibration"]["used"] and cal["calibration"]["ratio"] == 2, cal["calibration"]
assert cal["calibration"]["model"] == raw["model"], cal["calibration"]
for r, c in zip(raw["candidates"], cal["candidates"]):
    assert c["layout"] == r["layout"], (c, r)
    assert abs(c["step_time_s"] - 2 * r["step_time_s"]) <= 1e-9 * c["step_time_s"], (c, r)
    assert abs(c["mfu"] - r["mfu"] / 2) <= 1e-9 * r["mfu"], (c, r)
# The table's #1 and the best line quote the same, calibrated, MFU and step.
row = re.search(r"^  1  .*?\s([0-9.]+)\s+[0-9]+\s+\S+\s+([0-9.]+)%  ", text, re.M)
best = re.search(r"^- best: .*?MFU ([0-9]+)%; of its (\S+) s step", text, re.M)
assert row and best, text
step, mfu = float(row.group(1)), float(row.group(2))
assert abs(round(mfu) - int(best.group(1))) <= 1 and abs(mfu - 100 * cal["candidates"][0]["mfu"]) < 0.05, (row.groups(), best.groups())
assert abs(step - float(best.group(2))) <= 0.0005 + 0.005 * step, (row.groups(), best.groups())  # the table has 3 decimals
assert cal["reasons"][0].startswith("best: ") and f"MFU {round(100 * cal['candidates'][0]['mfu'])}%" in cal["reasons"][0]
PY
# The same record on h100-sxm does not scale a 70B plan, and the plan says why.
"$tessel" plan "$src/configs/llama-70b.yaml" --gpus 64 --hardware h100-sxm --format json --top 5 > "$dir/h100-cal.json"
"$tessel" plan "$src/configs/llama-70b.yaml" --gpus 64 --hardware h100-sxm --top 1 > "$dir/h100-cal.txt"
grep -qE "^calibration from tessel tune of a [0-9.]+K-parameter llama \(4 layers, d_model 128, seq_len 64, fp32\) on h100-sxm not used: the planned model has 69B parameters, more than 2x the [0-9.]+K measured.*hint: " \
  "$dir/h100-cal.txt" || { cat "$dir/h100-cal.txt"; fail "a tiny model's calibration was applied to a 70B model, or silently skipped"; }
python3 - "$dir/h100-sxm.json" "$dir/h100-cal.json" <<'PY'
import json, sys
plain, cal = (json.load(open(p)) for p in sys.argv[1:])
assert not cal["calibration"]["used"] and cal["calibration"]["ratio"] == 1, cal["calibration"]
assert [c["step_time_s"] for c in cal["candidates"]] == [c["step_time_s"] for c in plain["candidates"]]
PY
# A file of the first format (ratios without the model) is read and not used.
echo '{"hardware": "cpu-local", "ratios": [1.5, 2.5, 2.0]}' > "$dir/calibration/cpu-local.json"
"$tessel" plan "$dir/run/tuned.yaml" --gpus 2 --hardware cpu-local --top 1 > "$dir/old.txt"
grep -q "^calibration in $dir/calibration/cpu-local.json not used: it is of the first format" "$dir/old.txt" \
  || { cat "$dir/old.txt"; fail "a first-format calibration file was not announced as unused"; }
grep -q "times scaled" "$dir/old.txt" && fail "a first-format calibration file scaled the plan"

# 6. Mixed clusters.
cat > "$dir/mixed.yaml" <<YAML
groups:
  - {name: fast, hardware: h800, nodes: 4}
  - {name: big, hardware: h20, nodes: 8}
YAML
"$tessel" plan "$src/configs/llama-70b.yaml" --cluster "$dir/mixed.yaml" --set batch.global=768 --format json \
  > "$dir/mixed.json" || fail "the mixed cluster plan"
python3 - "$dir/mixed.json" <<'PY'
import json, sys
plan = json.load(open(sys.argv[1]))
best = plan["best"]
assert plan["gpus"] == 96 and best["gpus"] == 96, (plan["gpus"], best["gpus"])
assert best["strategy"] in ("stages across groups", "replicas per group"), best["strategy"]
others = [c for c in plan["candidates"] if c["strategy"].endswith(" alone") or c["strategy"].startswith("all as ")]
assert {c["strategy"] for c in others} == {"fast alone", "big alone", "all as h20"}, others
for c in others:
    assert best["tokens_per_s"] > c["tokens_per_s"], (best, c)
assert any(s.startswith(("batch.shares=", "parallel.pipeline_split=")) for s in plan["set"]), plan["set"]
assert "batch.global=768" in plan["set"] and any(s.startswith("parallel.order=") for s in plan["set"]), plan["set"]
PY
# This machine's ranks at two speeds: each mixed plan's --set line runs under tessel launch.
make_dataset "$tessel" "$dir"
sed -e 's/^name: cpu-local/name: cpu-half/' -e 's/^peak_tflops: .*/peak_tflops: {bf16: 0.04, fp16: 0.04, fp32: 0.04}/' \
  "$src/configs/hardware/cpu-local.yaml" > "$dir/cpu-half.yaml"
cat > "$dir/cpus.yaml" <<YAML
groups:
  - {name: quick, hardware: cpu-local, nodes: 1}
  - {name: slow, hardware: $dir/cpu-half.yaml, nodes: 1}
YAML
cat > "$dir/small.yaml" <<YAML
run: {steps: 3, log_every: 1, seed: 5}
model: {arch: llama, vocab_size: 260, seq_len: 32, layers: 6, d_model: 64, heads: 4, kv_heads: 2, ffn_dim: 128}
batch: {global: 16, micro: 2}
optim: {lr: 3.0e-3, warmup_steps: 1}
parallel: {bucket_mb: 0.01}
data: {train: [{path: $dir/ds_train, weight: 1.0}], tokenizer: bytes}
checkpoint: {resume: none}
logging: {tensorboard: false}
YAML
"$tessel" plan "$dir/small.yaml" --cluster "$dir/cpus.yaml" --format json > "$dir/cpus.json" || fail "the CPU cluster plan"
"$tessel" train "$dir/small.yaml" --set run.out_dir="$dir/one" > "$dir/one.log" 2>&1 || { cat "$dir/one.log"; fail "one rank"; }
python3 - "$dir/cpus.json" > "$dir/mixed_sets.txt" <<'PY'
import json, sys
for c in json.load(open(sys.argv[1]))["candidates"]:
    if c["strategy"] in ("stages across groups", "replicas per group"):
        print(c["strategy"].split()[0] + "\t" + " ".join(c["set"]))
PY
[ "$(wc -l < "$dir/mixed_sets.txt")" = 2 ] || { cat "$dir/cpus.json"; fail "expected both ways of using the two groups"; }
while IFS=$'\t' read -r name set; do
  read -r -a overrides <<< "$set"
  "$tessel" launch --nproc-per-node 4 "$dir/small.yaml" --set run.out_dir="$dir/$name" "${overrides[@]}" \
    < /dev/null > "$dir/$name.log" 2>&1 || { cat "$dir/$name.log"; fail "the $name plan's --set line under tessel launch: $set"; }
  python3 - "$dir/one/metrics.jsonl" "$dir/$name/metrics.jsonl" "$name" <<'PY'
import json, sys
one, got = ({r["step"]: r["loss"] for r in map(json.loads, open(p)) if "loss" in r} for p in sys.argv[1:3])
assert sorted(one) == sorted(got) == [1, 2, 3], (sorted(one), sorted(got))
for step in one:
    assert abs(got[step] - one[step]) <= 1e-5 * abs(one[step]), (sys.argv[3], step, got[step], one[step])
PY
done < "$dir/mixed_sets.txt"
expect_error "cluster.*replaces --gpus and --hardware" \
  "$tessel" plan "$src/configs/llama-70b.yaml" --cluster "$dir/mixed.yaml" --gpus 8
printf 'groups:\n  - {hardware: h800, nodes: 4}\n  - {hardware: h2O, nodes: 8}\n' > "$dir/typo.yaml"
expect_error "typo.yaml:3: unknown hardware 'h2O'; known: " "$tessel" plan "$src/configs/llama-70b.yaml" --cluster "$dir/typo.yaml"
printf 'groups:\n  - {hardware: h800, nodes: 0}\n' > "$dir/zero.yaml"
expect_error "zero.yaml:2: a group of 0 nodes" "$tessel" plan "$src/configs/llama-70b.yaml" --cluster "$dir/zero.yaml"
echo "plan and tune: ok"
