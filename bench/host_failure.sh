#!/usr/bin/env bash
# Host failures at random moments (not in `make test`: a few minutes). On a cluster of two hosts
# made of network namespaces (tests/cluster/cluster_lib.sh, needs root), a tiny model trains
# 150 steps with dp 4 (2 ranks per host) under `tessel launch --max-restarts 1 --min-hosts 1`.
# Each trial kills host h2 (link down, every process killed) after a random step, lets the job
# restart on h1 (dp 2, the same global batch), then checks that its newest checkpoint verifies
# and its curve equals the uninterrupted one within 1e-5, and brings h2 back.
# Prints one JSON line per trial and a summary line:
#   detect_s   the fault to the launcher's failure report (the ranks' collective timeout,
#              parallel.timeout_s = 5, the launcher's 5 s grace for mpirun, and its 3 s probe of
#              the host that is gone)
#   recover_s  the failure to the first step after resuming (metrics.jsonl's recovery_s)
#   bench/host_failure.sh [TESSEL_BINARY] [TRIALS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tessel=$(realpath "${1:-$root/build/tessel}")
trials=${2:-20}
source "$root/tests/launch/check_lib.sh"
source "$root/tests/cluster/cluster_lib.sh"
cluster_require
dir=$(mktemp -d)
CLUSTER_CLEANUP='pkill -KILL -f "$dir/" 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$dir"'
export OMP_NUM_THREADS=1
cluster_up 2 "$dir/cluster"
make_random_dataset "$tessel" "$dir"
fault_config "$dir" 150 > "$dir/tiny.yaml"
"$tessel" train "$dir/tiny.yaml" --set run.out_dir="$dir/straight" > "$dir/straight.log" 2>&1 \
  || { cat "$dir/straight.log"; fail "the uninterrupted run"; }
cluster_hostfile 2 > "$dir/hostfile"
for ((t = 1; t <= trials; t++)); do
  run=$dir/trial$t
  kill_step=$((10 + RANDOM % 120))
  cluster_run 1 "$tessel" launch --max-restarts 1 --min-hosts 1 --hostfile "$dir/hostfile" --nproc-per-node 2 \
    "$dir/tiny.yaml" --set run.out_dir="$run" parallel.dp=4 > "$run.log" 2>&1 &
  launcher=$!
  wait_beat_step "$run" 3 "$kill_step"
  fault=$(date +%s.%N)
  cluster_kill 2
  status=0
  wait "$launcher" || status=$?
  verified=false
  "$tessel" ckpt verify "$run/checkpoints" > /dev/null 2>&1 && verified=true
  python3 - "$dir" "$t" "$kill_step" "$fault" "$status" "$verified" <<'PY' | tee -a "$dir/trials.jsonl"
import datetime, json, re, sys
d, t, kill_step, fault, status, verified = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), sys.argv[6] == "true"
want = [json.loads(l)["loss"] for l in open(f"{d}/straight/metrics.jsonl")]
rs = [json.loads(l) for l in open(f"{d}/trial{t}/metrics.jsonl")]
curve = len(rs) == len(want) and max(abs(r["loss"] - w) / w for r, w in zip(rs, want)) <= 1e-5
m = re.search(r"\[([0-9-]+ [0-9:.]+)\] \[launch\] \[error\] the job failed", open(f"{d}/trial{t}.log").read())
detect = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp() - fault if m else None
rec = [r for r in rs if "recovery_s" in r]
print(json.dumps({"trial": t, "killed_after_step": kill_step, "exit": status, "checkpoint_verifies": verified,
                  "curve_within_1e-5": curve, "detect_s": round(detect, 2) if detect is not None else None,
                  "recover_s": round(rec[0]["recovery_s"], 2) if rec else None,
                  "steps_recomputed": rec[0]["steps_recomputed"] if rec else None}))
PY
  cluster_revive 2
done
python3 - "$dir/trials.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ok = [r for r in rows if r["exit"] == 0 and r["checkpoint_verifies"] and r["curve_within_1e-5"]]
det = [r["detect_s"] for r in rows if r["detect_s"] is not None]
rec = [r["recover_s"] for r in rows if r["recover_s"] is not None]
print(json.dumps({"bench": "host_failure", "trials": len(rows), "ok": len(ok),
                  "detect_median_s": round(statistics.median(det), 2), "detect_max_s": round(max(det), 2),
                  "recover_median_s": round(statistics.median(rec), 2), "recover_max_s": round(max(rec), 2)}))
PY
