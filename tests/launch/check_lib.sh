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
