#!/usr/bin/env bash
# `tessel launch` end to end on this machine:
#   1. two data-parallel ranks (zero 1), and two pipeline stages (1f1b), train the same loss
#      curve as one rank (metrics.jsonl), and a run that moves between layouts at its
#      checkpoints (tp 2 with sequence parallelism, pp 2 x dp 2 with zero 2, 1 rank, tp 2 x pp 2)
#      continues it;
#   2. SIGKILL of one of four ranks ends the job in seconds, non-zero, naming the rank; with
#      --max-restarts 1 the job comes back from its newest checkpoint and finishes;
#   3. SIGTERM or SIGUSR1 to the launcher: every rank saves a checkpoint after the same step, exit 0;
#   4. an unresolvable host, a host that refuses ssh and a world that does not fit the grid are clear errors.
#   tests/launch/launch_check.sh TESSEL_BINARY
set -euo pipefail
tessel=$1
dir=$(mktemp -d)
trap 'pkill -KILL -f "$dir/run" 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT
export OMP_NUM_THREADS=1
source "$(dirname "$0")/check_lib.sh"
# wait_for LOG PATTERN: until the job's log shows PATTERN (or 20 s pass).
wait_for() {
  for _ in $(seq 1 200); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
}
# rank_pid: the process id of one rank (a tessel process, not mpirun) of the tiny config's job.
rank_pid() {
  pgrep -f "tessel train $dir/tiny.yaml" | while read -r p; do
    [ "$(ps -o comm= -p "$p")" = tessel ] && echo "$p"; done | tail -1
}

make_dataset "$tessel" "$dir" --val-fraction 0.1
cat > "$dir/tiny.yaml" <<YAML
run: {out_dir: $dir/run1, steps: 12, log_every: 4, eval_every: 6, eval_batches: 1, seed: 3}
model: {arch: llama, vocab_size: 258, seq_len: 32, layers: 2, d_model: 32, heads: 4, kv_heads: 2, ffn_dim: 64}
batch: {global: 8, micro: 4}
optim: {lr: 3.0e-3, warmup_steps: 2, decay_steps: 12}
parallel: {bucket_mb: 0.01}
data: {train: [{path: $dir/ds_train, weight: 1.0}], val: $dir/ds_val, tokenizer: bytes}
checkpoint: {every: 0, resume: none}
logging: {tensorboard: false}
YAML

# 1. Layout equivalence through the command line.
"$tessel" train "$dir/tiny.yaml" > "$dir/one.log" 2>&1 || { cat "$dir/one.log"; fail "single-rank run"; }
"$tessel" launch --nproc-per-node 2 "$dir/tiny.yaml" --set run.out_dir="$dir/run2" batch.micro=2 parallel.zero=1 \
  > "$dir/two.log" 2>&1 || { cat "$dir/two.log"; fail "two-rank launch"; }
python3 - "$dir/run1/metrics.jsonl" "$dir/run2/metrics.jsonl" <<'PY'
import json, sys
one = [json.loads(l) for l in open(sys.argv[1])]
two = [json.loads(l) for l in open(sys.argv[2])]
assert len(one) == len(two) == 12, (len(one), len(two))
for a, b in zip(one, two):
    for key in ("loss", "grad_norm"):
        assert abs(a[key] - b[key]) <= 1e-5 * abs(a[key]), (a["step"], key, a[key], b[key])
assert abs(one[-1]["eval_loss"] - two[-1]["eval_loss"]) <= 1e-5 * one[-1]["eval_loss"]
assert one[-1]["loss"] < one[0]["loss"]
PY
grep -q "rank 1" "$dir/two.log" && fail "rank 1 printed info lines; only rank 0 should"
"$tessel" launch --nproc-per-node 2 "$dir/tiny.yaml" --set run.out_dir="$dir/run3" batch.micro=2 parallel.pp=2 \
  > "$dir/pp.log" 2>&1 || { cat "$dir/pp.log"; fail "two-stage pipeline launch"; }
grep -q "pipeline rank 1: layer 1 + head" "$dir/pp.log" || { cat "$dir/pp.log"; fail "pp 2: rank 1 should hold layer 1 and the head"; }
python3 - "$dir/run1/metrics.jsonl" "$dir/run3/metrics.jsonl" <<'PY'
import json, sys
one = [json.loads(l) for l in open(sys.argv[1])]
pp = [json.loads(l) for l in open(sys.argv[2])]
assert len(one) == len(pp) == 12, (len(one), len(pp))
for a, b in zip(one, pp):
    assert abs(a["loss"] - b["loss"]) <= 1e-5 * abs(a["loss"]), (a["step"], a["loss"], b["loss"])
    assert abs(a["grad_norm"] - b["grad_norm"]) <= 1e-4 * abs(a["grad_norm"]), (a["step"], a["grad_norm"], b["grad_norm"])
assert abs(one[-1]["eval_loss"] - pp[-1]["eval_loss"]) <= 1e-5 * one[-1]["eval_loss"]
PY

# Resume across layouts: tp 2 + sequence parallel to step 3, pp 2 x dp 2 (zero 2) to step 6,
# 1 rank to step 9, tp 2 x pp 2 to step 12.
resume=(--set run.out_dir="$dir/runr" checkpoint.every=3 checkpoint.resume=auto)
"$tessel" launch --nproc-per-node 2 "$dir/tiny.yaml" "${resume[@]}" run.steps=3 parallel.tp=2 \
  parallel.sequence_parallel=true > "$dir/r0.log" 2>&1 || { cat "$dir/r0.log"; fail "resume leg tp 2"; }
"$tessel" launch --nproc-per-node 4 "$dir/tiny.yaml" "${resume[@]}" run.steps=6 batch.micro=2 parallel.pp=2 \
  parallel.zero=2 > "$dir/r1.log" 2>&1 || { cat "$dir/r1.log"; fail "resume leg pp 2 x dp 2"; }
"$tessel" train "$dir/tiny.yaml" "${resume[@]}" run.steps=9 > "$dir/r2.log" 2>&1 || { cat "$dir/r2.log"; fail "resume leg 1 rank"; }
"$tessel" launch --nproc-per-node 4 "$dir/tiny.yaml" "${resume[@]}" batch.micro=2 parallel.tp=2 parallel.pp=2 \
  parallel.sequence_parallel=true > "$dir/r3.log" 2>&1 || { cat "$dir/r3.log"; fail "resume leg tp 2 x pp 2"; }
grep -q "resumed from .*step_00000009 at step 9" "$dir/r3.log" || { cat "$dir/r3.log"; fail "leg 4 did not resume at step 9"; }
python3 - "$dir/run1/metrics.jsonl" "$dir/runr/metrics.jsonl" <<'PY'
import json, sys
one = [json.loads(l) for l in open(sys.argv[1])]
resumed = [json.loads(l) for l in open(sys.argv[2])]
assert [r["step"] for r in resumed] == list(range(1, 13)), [r["step"] for r in resumed]
for a, b in zip(one, resumed):
    assert abs(a["loss"] - b["loss"]) <= 1e-5 * abs(a["loss"]), (a["step"], a["loss"], b["loss"])
PY

# 2. A rank killed with SIGKILL takes the job down.
"$tessel" launch --nproc-per-node 4 "$dir/tiny.yaml" --set run.out_dir="$dir/run4" run.steps=100000 batch.micro=2 \
  > "$dir/kill.log" 2>&1 &
launcher=$!
wait_for "$dir/kill.log" "step .*4/100000"
victim=$(rank_pid)
[ -n "$victim" ] || { cat "$dir/kill.log"; fail "no rank process found"; }
start=$(date +%s)
kill -KILL "$victim"
status=0
wait "$launcher" || status=$?
elapsed=$(( $(date +%s) - start ))
[ "$status" -ne 0 ] || fail "the job exited 0 after a rank was killed"
[ "$elapsed" -le 20 ] || fail "the job took ${elapsed}s to end after a rank was killed"
grep -q "rank [0-9]" "$dir/kill.log" && grep -qi "killed\|signal 9" "$dir/kill.log" || { cat "$dir/kill.log"; fail "no message naming the killed rank"; }

# With --max-restarts the killed job comes back from its newest checkpoint and trains on (it is
# then stopped with SIGTERM, so the test does not race the end of the run).
"$tessel" launch --max-restarts 1 --nproc-per-node 2 "$dir/tiny.yaml" --set run.out_dir="$dir/run5" run.steps=100000 \
  batch.micro=2 checkpoint.every=20 run.log_every=20 > "$dir/restart.log" 2>&1 &
launcher=$!
wait_for "$dir/restart.log" "saved checkpoint .*step_00000040"
victim=$(rank_pid)
[ -n "$victim" ] || { cat "$dir/restart.log"; fail "no rank process found for the restart test"; }
kill -KILL "$victim"
wait_for "$dir/restart.log" "resumed from .* at step [1-9]"
wait_for "$dir/restart.log" "restarting the job.*" && sleep 1
kill -TERM "$launcher"
wait "$launcher" || { cat "$dir/restart.log"; fail "the restarted job did not stop cleanly"; }
grep -q "restarting the job (1 of --max-restarts 1)" "$dir/restart.log" || { cat "$dir/restart.log"; fail "no restart"; }
grep -q "resumed from .* at step [1-9]" "$dir/restart.log" || { cat "$dir/restart.log"; fail "the restart did not resume"; }
grep -q "stop requested: saving a checkpoint" "$dir/restart.log" || { cat "$dir/restart.log"; fail "the restarted job did not train on"; }

# 3. SIGTERM to the launcher (Slurm's preemption notice), or SIGUSR1 (sbatch --signal=B:USR1@120
# before a time limit): checkpoint, clean exit, so that a requeued job resumes.
for sig in TERM USR1; do
  "$tessel" launch --nproc-per-node 2 "$dir/tiny.yaml" --set run.out_dir="$dir/run6$sig" run.steps=100000 batch.micro=2 \
    run.log_every=20 > "$dir/term.log" 2>&1 &
  launcher=$!
  wait_for "$dir/term.log" "step .*40/100000"
  kill -$sig "$launcher"
  term_status=0
  wait "$launcher" || term_status=$?
  [ "$term_status" -eq 0 ] || { cat "$dir/term.log"; fail "SIG$sig: exit status $term_status, expected 0 after a clean stop"; }
  grep -q "stop requested: saving a checkpoint at step" "$dir/term.log" || { cat "$dir/term.log"; fail "SIG$sig: no clean stop"; }
  ls "$dir/run6$sig/checkpoints" | grep -q "step_" || fail "SIG$sig: no checkpoint written"
done

# 4. Errors before anything starts.
out=$("$tessel" launch --hosts no-such-host.invalid --nproc-per-node 1 "$dir/tiny.yaml" 2>&1) && fail "unresolvable host accepted"
echo "$out" | grep -q "host 'no-such-host.invalid' (from --hosts) cannot be resolved" || fail "unclear host error: $out"
# A host whose ssh port refuses connections (0.0.0.0 is this machine; nothing listens on port 1).
out=$(TESSEL_LAUNCH_SSH_PORT=1 "$tessel" launch --hosts 0.0.0.0 --nproc-per-node 1 "$dir/tiny.yaml" 2>&1) \
  && fail "a host refusing ssh accepted"
echo "$out" | grep -q "host '0.0.0.0' (from --hosts) is not reachable on its ssh port 1" || fail "unclear unreachable-host error: $out"
out=$("$tessel" launch --nproc-per-node 3 "$dir/tiny.yaml" --set parallel.dp=2 2>&1) && fail "3 ranks for dp=2 accepted"
echo "$out" | grep -q "parallel.tp x pp x dp = 1 x 1 x 2 = 2" || fail "unclear world-size error: $out"
out=$(PATH=/nonexistent "$tessel" launch --nproc-per-node 2 "$dir/tiny.yaml" 2>&1) && fail "launch without mpirun accepted"
echo "$out" | grep -q "mpirun, which is not on PATH" || fail "unclear missing-mpirun error: $out"
echo "6 passed, 0 failed (rank killed: job ended in ${elapsed}s with status $status)"
