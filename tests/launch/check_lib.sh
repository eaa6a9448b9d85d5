# Shared by the end-to-end check scripts in tests/launch (sourced, not run).

fail() { echo "FAILED: $*" >&2; exit 1; }

# make_dataset TESSEL DIR [ARGS...]: 40 short lines of text, prepared with the byte tokenizer as
# DIR/ds_train (and DIR/ds_val with --val-fraction among ARGS).
make_dataset() {
  local tessel=$1 dir=$2
  shift 2
  for i in $(seq 1 40); do
    printf 'In the beginning %d was the word, and the word was %d times with us.\n' "$i" "$((i * 7))" > "$dir/$i.txt"
  done
  "$tessel" data prepare --input "$dir"/*.txt --tokenizer bytes --out "$dir/ds" "$@" > /dev/null
}

# make_random_dataset TESSEL DIR: 80k words drawn from 400 made-up ones, prepared with the byte
# tokenizer as DIR/ds_train: text a tiny model cannot learn by heart in a few hundred steps, so
# that layouts whose sums run in another order stay within 1e-5 of each other (a memorized text
# would amplify the differences).
make_random_dataset() {
  local tessel=$1 dir=$2
  python3 - "$dir" <<'PY'
import random, sys
r = random.Random(7)
words = ["".join(r.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(r.randint(2, 8))) for _ in range(400)]
for f in range(20):
    with open(f"{sys.argv[1]}/{f}.txt", "w") as out:
        out.write(" ".join(r.choice(words) for _ in range(4000)) + "\n")
PY
  "$tessel" data prepare --input "$dir"/*.txt --tokenizer bytes --out "$dir/ds" > /dev/null
}

# A rank's heartbeat under a run directory: RUN/heartbeats/<job>/rank_N.json as `tessel launch`
# lays them out (the newest job's), or RUN/heartbeats/rank_N.json.
beat_file() {
  local f
  f=$(ls -t "$1"/heartbeats/*/"$(printf 'rank_%05d.json' "$2")" "$1/heartbeats/$(printf 'rank_%05d.json' "$2")" \
    2>/dev/null | head -1)
  echo "${f:-/nonexistent}"
}
# The step (or pid) a rank's heartbeat last reported; 0 before its first beat. Read with sed, not
# python: the fault tests poll these while a short run goes on, on a busy machine.
beat_field() { sed -n "s/.*\"$3\": *\([0-9][0-9]*\).*/\1/p" "$(beat_file "$1" "$2")" 2>/dev/null | head -1; }
beat_step() {
  local s
  s=$(beat_field "$1" "$2" step)
  echo "${s:-0}"
}
beat_pid() {
  local p
  p=$(beat_field "$1" "$2" pid)
  [ -n "$p" ] || { echo "no heartbeat of rank $2 under $1" >&2; return 1; }
  echo "$p"
}
# wait_beat_step RUN RANK STEP: until the rank has finished STEP (at most 120 s).
wait_beat_step() {
  local deadline=$((SECONDS + 120))
  while [ $SECONDS -lt $deadline ]; do
    [ "$(beat_step "$1" "$2")" -ge "$3" ] && return 0
    sleep 0.05
  done
  fail "no heartbeat of rank $2 under $1 reached step $3"
}

# fault_config DIR STEPS: the fault tests' run on make_random_dataset's text (dp 4 takes 8
# micro-batches of 2 per step; a checkpoint every 20 steps; collectives time out after 5 s).
fault_config() {
  cat <<YAML
run: {steps: $2, log_every: 10, seed: 3}
model: {arch: llama, vocab_size: 260, seq_len: 64, layers: 4, d_model: 64, heads: 4, kv_heads: 2, ffn_dim: 128}
batch: {global: 32, micro: 2}
optim: {lr: 1.0e-3, warmup_steps: 2}
data: {train: [{path: $1/ds_train, weight: 1.0}], tokenizer: bytes}
logging: {tensorboard: false}
checkpoint: {every: 20}
parallel: {timeout_s: 5}
YAML
}
