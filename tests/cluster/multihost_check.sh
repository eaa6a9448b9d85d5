#!/usr/bin/env bash
# Two hosts (network namespaces on this machine, tests/cluster/cluster_lib.sh), two ranks on each:
# `tessel launch --hostfile` runs dp 4 and tp 2 x pp 2 across them over ssh and TCP, and both
# follow the single-rank curve within 1e-5. Bad hostfiles are refused before anything starts, and
# a stop signal during those checks starts nothing.
#   tests/cluster/multihost_check.sh TESSEL_BINARY
set -euo pipefail
tessel=$(realpath "$1")
here=$(dirname "$(realpath "$0")")
source "$here/../launch/check_lib.sh"
source "$here/cluster_lib.sh"
cluster_require
dir=$(mktemp -d)
CLUSTER_CLEANUP='[ -n "${KEEP:-}" ] || rm -rf "$dir"'
export OMP_NUM_THREADS=1
cluster_up 2 "$dir/cluster"
make_dataset "$tessel" "$dir"
cat > "$dir/tiny.yaml" <<YAML
run: {steps: 6, log_every: 1, seed: 3}
model: {arch: llama, vocab_size: 260, seq_len: 32, layers: 4, d_model: 32, heads: 4, kv_heads: 2, ffn_dim: 64}
batch: {global: 8, micro: 2}
optim: {lr: 3.0e-3, warmup_steps: 2}
data: {train: [{path: $dir/ds_train, weight: 1.0}], tokenizer: bytes}
logging: {tensorboard: false}
checkpoint: {every: 0}
YAML
cluster_hostfile 2 > "$dir/hostfile"
"$tessel" train "$dir/tiny.yaml" --set run.out_dir="$dir/one" > "$dir/one.log" 2>&1 || { cat "$dir/one.log"; fail "one rank"; }
for layout in "parallel.dp=4" "parallel.tp=2 parallel.pp=2"; do
  name=${layout// /_}
  # shellcheck disable=SC2086
  cluster_run 1 "$tessel" launch --hostfile "$dir/hostfile" --nproc-per-node 2 "$dir/tiny.yaml" \
    --set run.out_dir="$dir/$name" $layout > "$dir/$name.log" 2>&1 || { cat "$dir/$name.log"; fail "$layout on 2 hosts"; }
  grep -q "launching 4 ranks on hostfile" "$dir/$name.log" || { cat "$dir/$name.log"; fail "$layout: not a hostfile launch"; }
  # The ranks' own view of where they run: two on each host.
  grep -qF "4 ranks on h1 (ranks 0-1), h2 (ranks 2-3)" "$dir/$name.log" || { cat "$dir/$name.log"; fail "$layout: placement"; }
done

# Bad input, refused before any rank starts, naming the host and what is wrong.
refused() {  # refused NAME EXPECTED-TEXT HOSTFILE
  local out
  if out=$(cluster_run 1 "$tessel" launch --hostfile "$3" --nproc-per-node 2 "$dir/tiny.yaml" \
    --set run.out_dir="$dir/bad" parallel.dp=4 2>&1); then
    fail "$1: launched"
  fi
  grep -qF -- "$2" <<< "$out" || { echo "$out"; fail "$1: no '$2'"; }
  [ ! -e "$dir/bad/metrics.jsonl" ] || fail "$1: a rank started"
}
printf 'h1 slots=2\nh2 slots=1\n' > "$dir/few-slots"
refused "too few slots" "few-slots:2: host h2 has slots=1, but 2 ranks go on each host" "$dir/few-slots"
printf 'h1 slots=2\n198.18.0.9 slots=2\n' > "$dir/unreachable"
refused "an unreachable host" "host '198.18.0.9' (from $dir/unreachable) is not reachable on its ssh port 22" \
  "$dir/unreachable"
# h2 has another Tessel at the same path.
printf '#!/bin/sh\necho "tessel 0.0.1 (0123456789ab)"\n' > "$dir/other-tessel"
chmod +x "$dir/other-tessel"
cluster_overlay 2 "$dir/other-tessel" "$tessel"
refused "another build on h2" "host 'h2' (from $dir/hostfile) runs tessel 0.0.1 (0123456789ab) at $tessel, but this launcher is" \
  "$dir/hostfile"
cluster_overlay_off 2 "$tessel"
echo "bad hostfiles refused before starting: too few slots, an unreachable host, another build on a host"

# SIGUSR1 (Slurm's warning before a time limit) while the launcher still checks the hosts (h2's
# build answers after 3 s): no rank starts, and the launcher exits 0, as after a clean stop.
printf '#!/bin/sh\nsleep 3\necho "%s"\n' "$("$tessel" --version)" > "$dir/slow-tessel"
chmod +x "$dir/slow-tessel"
cluster_overlay 2 "$dir/slow-tessel" "$tessel"
cluster_run 1 "$tessel" launch --hostfile "$dir/hostfile" --nproc-per-node 2 "$dir/tiny.yaml" \
  --set run.out_dir="$dir/early" parallel.dp=4 > "$dir/early.log" 2>&1 &
shell=$!
sleep 1
kill -USR1 "$(pgrep -o -f -- "launch --hostfile .*run.out_dir=$dir/early")"
status=0
wait "$shell" || status=$?
cluster_overlay_off 2 "$tessel"
[ "$status" -eq 0 ] || { cat "$dir/early.log"; fail "SIGUSR1 before the start: exit $status, not 0"; }
grep -q "SIGUSR1 received before the job started: not starting it" "$dir/early.log" \
  || { cat "$dir/early.log"; fail "SIGUSR1 before the start: not reported"; }
[ ! -e "$dir/early/metrics.jsonl" ] || fail "SIGUSR1 before the start: a rank started"
echo "SIGUSR1 during the host checks: nothing started, exit 0"

python3 - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
def losses(run):
    return [r["loss"] for r in map(json.loads, open(f"{d}/{run}/metrics.jsonl"))]
want = losses("one")
assert len(want) == 6, want
for run in ("parallel.dp=4", "parallel.tp=2_parallel.pp=2"):
    got = losses(run)
    assert len(got) == 6, (run, got)
    worst = max(abs(a - b) / a for a, b in zip(want, got))
    assert worst <= 1e-5, (run, worst, want, got)
    print(f"2 hosts x 2 ranks, {run.replace('_', ' ')}: the one-rank curve within {worst:.1e} (loss {want[0]:.4f} -> {want[-1]:.4f})")
PY
