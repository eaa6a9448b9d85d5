#!/usr/bin/env bash
# Slurm on two namespace hosts (tests/cluster/cluster_lib.sh): munged and slurmctld on h1, a
# slurmd on each host, every job submitted with sbatch on 2 nodes x 2 tasks:
#   1. The job script runs `tessel launch` with no hosts: mpirun takes the allocation (its
#      daemons started by Slurm, not ssh), and dp 4 follows the single-rank curve within 1e-5.
#   2. docs/cluster.md's time-limit recipe, with tp 2 x pp 2: SIGUSR1 to the batch script (what
#      --signal=B:USR1@120 sends before the limit; here scancel sends it mid-run) makes the
#      launcher save a checkpoint and exit 0; the script requeues the job, and the requeued job
#      resumes from that checkpoint and finishes on the same curve.
#   3. An allocation smaller than the layout is refused before any rank starts.
#   tests/cluster/slurm_check.sh TESSEL_BINARY
set -euo pipefail
tessel=$(realpath "$1")
here=$(dirname "$(realpath "$0")")
source "$here/../launch/check_lib.sh"
source "$here/cluster_lib.sh"
cluster_require
cluster_slurm_require
dir=$(mktemp -d)
CLUSTER_CLEANUP='[ -n "${KEEP:-}" ] || rm -rf "$dir"'
export OMP_NUM_THREADS=1
cluster_up 2 "$dir/cluster"
cluster_slurm_up 2
make_random_dataset "$tessel" "$dir"
steps=60
fault_config "$dir" $steps > "$dir/tiny.yaml"
"$tessel" train "$dir/tiny.yaml" --set run.out_dir="$dir/straight" > "$dir/straight.log" 2>&1 \
  || { cat "$dir/straight.log"; fail "the uninterrupted run"; }

# docs/cluster.md's job script, with this run's paths and layout (its extra arguments).
cat > "$dir/job.sh" <<JOB
#!/bin/bash
$tessel launch $dir/tiny.yaml --set checkpoint.resume=auto "\$@" &
launcher=\$!
trap 'stopped=1; kill -USR1 \$launcher' USR1
wait \$launcher; wait \$launcher
status=\$?
if [ -n "\${stopped:-}" ] && [ \$status -eq 0 ]; then scontrol requeue "\$SLURM_JOB_ID"; fi
exit \$status
JOB
chmod +x "$dir/job.sh"

job_state() { cluster_slurm 1 scontrol show job "$1" | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }
# What Slurm saw, for a failure's report: the queue, the nodes, and the daemons' last lines.
slurm_report() {
  cluster_slurm 1 squeue -a >&2 || true
  cluster_slurm 1 sinfo -N >&2 || true
  tail -n 15 "$dir/cluster/slurm"/*.log >&2 || true
}
# sbatch --wait OUT ARGS...: the job, at most 3 minutes; its output file is OUT.
sbatch_wait() {
  local out=$1 status=0
  shift
  cluster_slurm 1 timeout 180 sbatch --wait --nodes 2 -o "$out" "$@" > /dev/null || status=$?
  [ $status -ne 124 ] || { cat "$out" >&2; slurm_report; fail "the job $* did not end within 3 minutes"; }
  return $status
}

# 1. dp 4 on the allocation.
echo "slurm: dp 4 on 2 nodes x 2 tasks"
sbatch_wait "$dir/dp4.out" --ntasks-per-node 2 "$dir/job.sh" run.out_dir="$dir/dp4" parallel.dp=4 \
  || { cat "$dir/dp4.out"; fail "dp 4: the job failed"; }
grep -q "launching 4 ranks on the Slurm allocation (2 nodes)" "$dir/dp4.out" || { cat "$dir/dp4.out"; fail "dp 4: not a Slurm launch"; }
grep -qF "4 ranks on h1 (ranks 0-1), h2 (ranks 2-3)" "$dir/dp4.out" || { cat "$dir/dp4.out"; fail "dp 4: placement"; }

# 2. Stopped by SIGUSR1 mid-run, requeued, resumed.
echo "slurm: tp 2 x pp 2, stopped by SIGUSR1 and requeued"
# Submits the job with run directory $dir/$1 and holds its ranks (SIGSTOP) once they have begun,
# so that the signal reaches them mid-run however busy the machine is: the whole run takes about
# 10 s. Sets $job and $ranks. Returns 1 when the job ended before its ranks could be held, which
# only a machine busy enough to miss the whole run between two looks does: it must then have
# ended well.
hold_job() {
  local r state=
  job=$(cluster_slurm 1 sbatch --parsable --nodes 2 --ntasks-per-node 2 --open-mode=append -o "$dir/$1.out" \
    "$dir/job.sh" run.out_dir="$dir/$1" parallel.tp=2 parallel.pp=2 parallel.timeout_s=60)
  wait_beat_step "$dir/$1" 0 2
  ranks=()
  for r in 0 1 2 3; do ranks+=("$(beat_pid "$dir/$1" "$r" 2>/dev/null)"); done
  kill -STOP "${ranks[@]}" 2>/dev/null && return 0
  kill -CONT "${ranks[@]}" 2>/dev/null || true
  for ((r = 0; r < 300; r++)); do
    state=$(job_state "$job")
    case $state in PENDING | RUNNING | COMPLETING | CONFIGURING) sleep 0.2 ;; *) break ;; esac
  done
  [ "$state" = COMPLETED ] || { cat "$dir/$1.out"; slurm_report; fail "requeue: the job ended $state before the signal"; }
  echo "slurm: job $job finished before its ranks could be held; once more"
  return 1
}
run=requeue
hold_job $run || { run=requeue-again && hold_job $run; } || fail "requeue: twice the job ended before the signal"
cluster_slurm 1 scancel --signal=USR1 --batch "$job"
sleep 1
kill -CONT "${ranks[@]}"
deadline=$((SECONDS + 120))  # the stop, 5 s pending, the rest of the run
while [ $SECONDS -lt $deadline ]; do
  state=$(job_state "$job")
  [ "$state" = COMPLETED ] && break
  case $state in FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) cat "$dir/$run.out"; fail "requeue: the job ended $state" ;; esac
  sleep 0.2
done
out=$dir/$run.out
[ "$state" = COMPLETED ] || { cat "$out"; slurm_report; fail "requeue: the job is $state after 2 minutes"; }
cluster_slurm 1 scontrol show job "$job" | grep -q "Restarts=1" || { cat "$out"; fail "requeue: not requeued once"; }
grep -q "SIGUSR1 received: the ranks save a checkpoint and stop" "$out" || { cat "$out"; fail "requeue: the signal did not reach the launcher"; }
grep -q "resumed from .*step_[0-9]* at step [1-9]" "$out" || { cat "$out"; fail "requeue: the requeued job did not resume"; }
"$tessel" ckpt verify "$dir/$run/checkpoints" > /dev/null || fail "requeue: ckpt verify"

# 3. 2 nodes x 1 task cannot hold dp 4.
if sbatch_wait "$dir/small.out" --ntasks-per-node 1 "$dir/job.sh" run.out_dir="$dir/small" parallel.dp=4 \
  --nproc-per-node 2; then
  cat "$dir/small.out"
  fail "small allocation: launched"
fi
grep -qF "the Slurm allocation has 2 task(s) on 2 node(s) (SLURM_NTASKS), but 2 ranks per node need 4" "$dir/small.out" \
  || { cat "$dir/small.out"; fail "small allocation: not refused with the allocation's numbers"; }
[ ! -e "$dir/small/metrics.jsonl" ] || fail "small allocation: a rank started"
echo "a 2-task allocation for 4 ranks is refused before starting"

python3 - "$dir" "$steps" "$run" <<'PY'
import json, sys
d, steps, requeued = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def losses(run):
    rs = [json.loads(l) for l in open(f"{d}/{run}/metrics.jsonl")]
    assert [r["step"] for r in rs] == list(range(1, steps + 1)), (run, [r["step"] for r in rs])
    return [r["loss"] for r in rs]
want = losses("straight")
for run, what in (("dp4", "dp 4"), (requeued, "tp 2 x pp 2, stopped by SIGUSR1 and requeued")):
    worst = max(abs(a - b) / a for a, b in zip(want, losses(run)))
    assert worst <= 1e-5, (run, worst)
    print(f"sbatch on 2 nodes x 2 tasks, {what}: the one-rank curve within {worst:.1e}")
PY
