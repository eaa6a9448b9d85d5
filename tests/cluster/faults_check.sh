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
#   3. A straggler (a rank held to a third of a CPU): the progress line, a warning and
#      metrics.jsonl name its rank and host and its slowdown; the curve is the same.
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
make_random_dataset "$tessel" "$dir"
steps=150
fault_config "$dir" $steps > "$dir/tiny.yaml"
"$tessel" train "$dir/tiny.yaml" --set run.out_dir="$dir/straight" > "$dir/straight.log" 2>&1 \
  || { cat "$dir/straight.log"; fail "the uninterrupted run"; }

# 1. Host h2 dies.
cluster_hostfile 2 > "$dir/hostfile"
cluster_run 1 "$tessel" launch --max-restarts 1 --min-hosts 1 --hostfile "$dir/hostfile" --nproc-per-node 2 \
  "$dir/tiny.yaml" --set run.out_dir="$dir/hostdeath" parallel.dp=4 > "$dir/hostdeath.log" 2>&1 &
launcher=$!
wait_beat_step "$dir/hostdeath" 3 40
killed_at=$(date +%s.%N)
cluster_kill 2
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
wait_beat_step "$dir/hung" 3 40
hung_pid=$(beat_pid "$dir/hung" 3)
stopped_at=$(date +%s.%N)
kill -STOP "$hung_pid"
status=0
wait "$launcher" || status=$?
[ "$status" -eq 0 ] || { cat "$dir/hung.log"; fail "hung rank: the restarted job exited $status"; }
grep -q "rank 3 on $(hostname) stopped beating .*its process hung, stopped or died" "$dir/hung.log" \
  || { cat "$dir/hung.log"; fail "hung rank: rank 3 not named"; }
grep -q "restarting the job (1 of --max-restarts 1)" "$dir/hung.log" || { cat "$dir/hung.log"; fail "hung rank: no restart"; }
"$tessel" ckpt verify "$dir/hung/checkpoints" > /dev/null || fail "hung rank: ckpt verify"

# 3. A straggler: rank 2 gets a third of a CPU (stopped 30 ms of every 45) for 6 s.
"$tessel" launch --nproc-per-node 4 "$dir/tiny.yaml" --set run.out_dir="$dir/slow" parallel.dp=4 checkpoint.every=0 \
  > "$dir/slow.log" 2>&1 &
launcher=$!
wait_beat_step "$dir/slow" 2 30
slow_pid=$(beat_pid "$dir/slow" 2)
end=$((SECONDS + 6))
while [ $SECONDS -lt $end ] && kill -STOP "$slow_pid" 2>/dev/null; do
  sleep 0.03
  kill -CONT "$slow_pid" 2>/dev/null || break
  sleep 0.015
done
kill -CONT "$slow_pid" 2>/dev/null || true
wait "$launcher" || { cat "$dir/slow.log"; fail "straggler: the job failed"; }
grep -q "straggler: rank 2 on $(hostname) worked [0-9.]*x the median" "$dir/slow.log" \
  || { cat "$dir/slow.log"; fail "straggler: no warning naming rank 2 and its host"; }
grep -q "| straggler rank 2 [0-9.]*x" "$dir/slow.log" || { cat "$dir/slow.log"; fail "straggler: not in the progress line"; }

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
slow_run = records("slow")
worst = max(abs(r["loss"] - w) / w for r, w in zip(slow_run, want))
assert len(slow_run) == steps and worst <= 1e-5, ("straggler", len(slow_run), worst)
slow = [r for r in slow_run if r.get("straggler_rank") == 2 and r["straggler_slowdown"] >= 1.5]
assert slow, "no logged step names rank 2 as the straggler"
print(f"straggler: rank 2 reported at {len(slow)} logged steps, up to {max(r['straggler_slowdown'] for r in slow):.2f}x "
      f"the median rank; the uninterrupted curve within {worst:.1e}")
PY
