#!/usr/bin/env bash
# A bad link on one of two namespace hosts (tests/cluster/cluster_lib.sh), 2 ranks on each, dp 4:
#   1. Lossy and slow: h2's link drops 3% of its packets each way and carries 50 Mbit/s at most.
#      The run finishes on the single-rank curve (TCP resends what was lost), only slower.
#   2. Cut off mid-run: every packet of h2 dropped while its ranks live on and keep beating (the
#      filesystem is shared). Every rank fails at parallel.timeout_s, the launcher ends the job
#      within a bound (no hang), names h2 as the host that no longer answers, and with
#      --max-restarts 1 --min-hosts 1 restarts on h1 from the newest checkpoint, on the curve.
#   tests/cluster/link_check.sh TESSEL_BINARY
set -euo pipefail
tessel=$(realpath "$1")
here=$(dirname "$(realpath "$0")")
source "$here/../launch/check_lib.sh"
source "$here/cluster_lib.sh"
cluster_require
cluster_link_require
dir=$(mktemp -d)
CLUSTER_CLEANUP='[ -n "${KEEP:-}" ] || rm -rf "$dir"'
export OMP_NUM_THREADS=1
cluster_up 2 "$dir/cluster"
make_random_dataset "$tessel" "$dir"
steps=30
fault_config "$dir" $steps > "$dir/tiny.yaml"
cluster_hostfile 2 > "$dir/hostfile"
"$tessel" train "$dir/tiny.yaml" --set run.out_dir="$dir/straight" > "$dir/straight.log" 2>&1 \
  || { cat "$dir/straight.log"; fail "the uninterrupted run"; }

# Starts `tessel launch` on h1 with the hostfile (extra arguments first); $launcher is its pid.
launch() {
  local run=$1
  shift
  cluster_run 1 "$tessel" launch "$@" --hostfile "$dir/hostfile" --nproc-per-node 2 "$dir/tiny.yaml" \
    --set run.out_dir="$dir/$run" parallel.dp=4 > "$dir/$run.log" 2>&1 &
  launcher=$!
}
# Waits for the launcher at most $1 seconds; fails the test if it is still running then.
finish() {
  local i status=0
  for ((i = 0; i < $1 * 10; i++)); do
    kill -0 "$launcher" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$launcher" 2>/dev/null && { cat "$dir/$2.log"; fail "$2: the job still runs after $1 s (a hang)"; }
  wait "$launcher" || status=$?
  return $status
}

# 1. A clean link, then a lossy, slow one, both from the start.
start=$(date +%s.%N)
launch clean
finish 120 clean || { cat "$dir/clean.log"; fail "clean link: the job failed"; }
clean_s=$(echo "$(date +%s.%N) - $start" | bc)
cluster_link 2 3 50mbit
start=$(date +%s.%N)
launch lossy --set parallel.timeout_s=30
finish 240 lossy || { cat "$dir/lossy.log"; fail "lossy link: the job failed"; }
lossy_s=$(echo "$(date +%s.%N) - $start" | bc)
cluster_link_clear 2

# 2. h2 cut off after step 6 (a checkpoint every 5 steps).
launch cut --max-restarts 1 --min-hosts 1 --set checkpoint.every=5
wait_beat_step "$dir/cut" 3 6
cut_at=$(date +%s.%N)
cluster_link 2 100
finish 90 cut || { cat "$dir/cut.log"; fail "cut off: the restarted job failed"; }
log=$dir/cut.log
grep -q "host h2 (ranks 2-3) no longer answers, though its ranks went on beating" "$log" \
  || { cat "$log"; fail "cut off: h2 not named"; }
grep -q "restarting without h2: 1 hosts, dp 4 -> 2" "$log" || { cat "$log"; fail "cut off: no restart on h1"; }
grep -q "resumed from .*step_[0-9]* at step [1-9]" "$log" || { cat "$log"; fail "cut off: not resumed from a checkpoint"; }
"$tessel" ckpt verify "$dir/cut/checkpoints" > /dev/null || fail "cut off: ckpt verify"

python3 - "$dir" "$steps" "$clean_s" "$lossy_s" "$cut_at" <<'PY'
import datetime, json, re, sys
d, steps, clean_s, lossy_s, cut_at = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
def losses(run):
    rs = [json.loads(l) for l in open(f"{d}/{run}/metrics.jsonl")]
    assert [r["step"] for r in rs] == list(range(1, steps + 1)), (run, [r["step"] for r in rs])
    return [r["loss"] for r in rs]
want = losses("straight")
worst = {run: max(abs(a - b) / a for a, b in zip(want, losses(run))) for run in ("clean", "lossy", "cut")}
assert all(w <= 1e-5 for w in worst.values()), worst
print(f"3% loss and 50 Mbit/s on h2's link: the one-rank curve within {worst['lossy']:.1e}, "
      f"{lossy_s:.1f} s against {clean_s:.1f} s on a clean link ({lossy_s / clean_s:.1f}x)")
m = re.search(r"\[([0-9-]+ [0-9:.]+)\] \[launch\] \[error\] the job failed", open(f"{d}/cut.log").read())
reported = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
print(f"h2 cut off: reported {reported - cut_at:.1f} s after the cut, restarted on h1, the one-rank curve "
      f"within {worst['cut']:.1e}")
PY
