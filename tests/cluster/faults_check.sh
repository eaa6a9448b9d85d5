#!/usr/bin/env bash
# Faults a cluster throws, each ending with the run's checkpoints intact and its curve equal to
# an uninterrupted run (within 1e-5 relative):
#   1. A host dies mid-step (its processes killed, its link down; tests/cluster/cluster_lib.sh):
#      the surviving ranks stop within parallel.timeout_s, the launcher names the host and its
#      ranks from their heartbeats, and with --max-restarts 1 --min-hosts 1 the job restarts on
#      the host that remains (dp 4 -> 2, twice the accumulation, the same global batch).
#      metrics.jsonl records the restart, the steps recomputed, the recovery time and the goodput.
#   2. A hung rank (SIGSTOP, on this machine): the others time out, the launcher names the
#      stopped rank, and the job restarts and finishes.
#   tests/cluster/faults_check.sh TESSEL_BINARY
set -euo pipefail
tessel=$(realpath "$1")
here=$(dirname "$(realpath "$0")")
source "$here/../launch/check_lib.sh"
source "$here/cluster_lib.sh"
cluster_require
dir=$(mktemp -d)
CLUSTER_CLEANUP='pkill -KILL -f "$dir/" 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$dir"'
export OMP_NUM_THREADS=1
cluster_up 2 "$dir/cluster"
# Text a tiny model cannot learn by heart in 150 steps (the layouts' sums, taken in another
# order, then stay within 1e-5 of each other; a memorized text would amplify them).
python3 - "$dir" <<'PY'
import random, sys
r = random.Random(7)
words = ["".join(r.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(r.randint(2, 8))) for _ in range(400)]
for f in range(20):
    with open(f"{sys.argv[1]}/{f}.txt", "w") as out:
        out.write(" ".join(r.choice(words) for _ in range(4000)) + "\n")
PY
"$tessel" data prepare --input "$dir"/*.txt --tokenizer bytes --out "$dir/ds" > /dev/null
steps=150
cat > "$dir/tiny.yaml" <<YAML
run: {steps: $steps, log_every: 10, seed: 3}
model: {arch: llama, vocab_size: 260, seq_len: 64, layers: 4, d_model: 64, heads: 4, kv_heads: 2, ffn_dim: 128}
batch: {global: 32, micro: 2}
optim: {lr: 1.0e-3, warmup_steps: 2}
data: {train: [{path: $dir/ds_train, weight: 1.0}], tokenizer: bytes}
logging: {tensorboard: false}
checkpoint: {every: 20}
parallel: {timeout_s: 5}
YAML
"$tessel" train "$dir/tiny.yaml" --set run.out_dir="$dir/straight" > "$dir/straight.log" 2>&1 \
  || { cat "$dir/straight.log"; fail "the uninterrupted run"; }

# The step a rank's heartbeat last reported (0 before its first beat).
beat_step() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['step'])" "$1" 2>/dev/null || echo 0; }
wait_step() {  # wait_step HEARTBEAT STEP: at most 120 s
  local i
  for ((i = 0; i < 1200; i++)); do
    [ "$(beat_step "$1")" -ge "$2" ] && return 0
    sleep 0.1
  done
  fail "no heartbeat reached step $2 in $1"
}

# 1. Host h2 dies.
cluster_hostfile 2 > "$dir/hostfile"
cluster_run 1 "$tessel" launch --max-restarts 1 --min-hosts 1 --hostfile "$dir/hostfile" --nproc-per-node 2 \
  "$dir/tiny.yaml" --set run.out_dir="$dir/hostdeath" parallel.dp=4 > "$dir/hostdeath.log" 2>&1 &
launcher=$!
wait_step "$dir/hostdeath/heartbeats/rank_00003.json" 40
killed_at=$(date +%s.%N)
ip -n "$CLUSTER_PREFIX-switch" link set h2 down
for pid in $(ip netns pids "$(cluster_ns 2)"); do kill -9 "$pid" 2>/dev/null || true; done
status=0
wait "$launcher" || status=$?
[ "$status" -eq 0 ] || { cat "$dir/hostdeath.log"; fail "host death: the restarted job exited $status"; }
log=$dir/hostdeath.log
grep -q "ranks 2-3 on h2 stopped beating .*host h2 no longer answers" "$log" || { cat "$log"; fail "host death: h2 not named"; }
grep -q "restarting without h2: 1 hosts, dp 4 -> 2 (8 micro-batches" "$log" || { cat "$log"; fail "host death: no restart on h1"; }
grep -q "resumed from .*step_[0-9]* at step [1-9]" "$log" || { cat "$log"; fail "host death: not resumed from the newest checkpoint"; }
"$tessel" ckpt verify "$dir/hostdeath/checkpoints" > /dev/null || fail "host death: ckpt verify"

# 2. Rank 3 stops (SIGSTOP) on this machine: 4 ranks, one hung.
"$tessel" launch --max-restarts 1 --nproc-per-node 4 "$dir/tiny.yaml" --set run.out_dir="$dir/hung" parallel.dp=4 \
  > "$dir/hung.log" 2>&1 &
launcher=$!
wait_step "$dir/hung/heartbeats/rank_00003.json" 40
hung_pid=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['pid'])" "$dir/hung/heartbeats/rank_00003.json")
stopped_at=$(date +%s.%N)
kill -STOP "$hung_pid"
status=0
wait "$launcher" || status=$?
[ "$status" -eq 0 ] || { cat "$dir/hung.log"; fail "hung rank: the restarted job exited $status"; }
grep -q "rank 3 on $(hostname) stopped beating .*its process hung, stopped or died" "$dir/hung.log" \
  || { cat "$dir/hung.log"; fail "hung rank: rank 3 not named"; }
grep -q "restarting the job (1 of --max-restarts 1)" "$dir/hung.log" || { cat "$dir/hung.log"; fail "hung rank: no restart"; }

python3 - "$dir" "$steps" "$killed_at" "$stopped_at" <<'PY'
import json, re, sys, datetime
d, steps, killed_at, stopped_at = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
def records(run):
    return [json.loads(l) for l in open(f"{d}/{run}/metrics.jsonl")]
want = [r["loss"] for r in records("straight")]
for run, fault_at in (("hostdeath", killed_at), ("hung", stopped_at)):
    rs = records(run)
    assert [r["step"] for r in rs] == list(range(1, steps + 1)), (run, [r["step"] for r in rs][:5])
    worst = max(abs(r["loss"] - w) / w for r, w in zip(rs, want))
    assert worst <= 1e-5, (run, worst)
    restart = [r for r in rs if "restarts" in r]
    assert len(restart) == 1 and restart[0]["restarts"] == 1, (run, restart)
    rec = restart[0]
    assert rec["steps_recomputed"] >= 0 and 0 < rec["recovery_s"] < 60, (run, rec)
    last = rs[-1]
    assert 0 < last["goodput"] <= 1 and last["productive_s"] <= last["wall_s"], (run, last)
    # Detection: the surviving ranks' failure (the launcher's log time of "failed first") after the fault.
    log = open(f"{d}/{run}.log").read()
    m = re.search(r"\[([0-9-]+ [0-9:.]+)\] \[launch\] \[error\] the job failed", log)
    detected = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
    print(f"{run}: the uninterrupted curve within {worst:.1e}; failure reported {detected - fault_at:.1f} s after the "
          f"fault, first step after resuming {rec['recovery_s']:.1f} s after the failure, {rec['steps_recomputed']:.0f} "
          f"steps recomputed, goodput {last['goodput']:.2f}")
PY
