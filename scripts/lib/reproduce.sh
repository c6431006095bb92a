# Sourced by the reproduction scripts (reproduce_lm.sh, reproduce_qa.sh, reproduce_vit.sh): the
# steps they share.

# run_logged COMMAND: appends COMMAND to the caller's `commands` (the report's Commands section),
# prints it, runs it (split into words, as the scripts build it) and sets `seconds` to its wall time.
run_logged() {
  commands+=("$1")
  echo "== $1"
  local t0
  t0=$(date +%s)
  $1
  seconds=$(($(date +%s) - t0))
}

# host_cpu: the CPU the figures of a report come from, as lscpu names it, with family and model
# (sessions get different CPUs, so every report names its own).
host_cpu() {
  echo "$(lscpu | sed -n 's/^Model name: *//p') (family $(lscpu | sed -n 's/^CPU family: *//p'), model $(lscpu | sed -n 's/^Model: *//p'))"
}

# add_timing_row PE METRICS KEY SECONDS: appends to the caller's `timings` the report's row
# "| PE | SECONDS | tokens/s | best KEY |" from a run's metrics.jsonl (the last logged throughput,
# the lowest KEY).
add_timing_row() {
  local best speed
  best=$(grep -o "\"$3\":[0-9.e+-]*" "$2" | cut -d: -f2 | sort -g | head -1)
  speed=$(grep -o '"tokens_per_s":[0-9.e+-]*' "$2" | tail -1 | cut -d: -f2)
  timings+=("| $1 | $4 | $(printf '%.0f' "$speed") | $(printf '%.3f' "$best") |")
}

# lm_train_command PE DIR STEPS BATCH LR WARMUP EVAL_EVERY VALID_TOKENS [OPTION...]: the LM
# reproduction's train_lm command for position encoding PE into DIR, the model and data from the
# caller's BUILD, CORPUS, CONTEXT, VOCAB, LAYERS, CHANNELS and HEADS.
lm_train_command() {
  local pe="$1" dir="$2" steps="$3" batch="$4" lr="$5" warmup="$6" eval_every="$7" valid_tokens="$8"
  shift 8
  local cmd="$BUILD/apps/train_lm --corpus $CORPUS --pe $pe --out $dir --steps $steps --batch $batch"
  cmd+=" --context $CONTEXT --lr $lr --set vocab_size=$VOCAB --set layers=$LAYERS --set channels=$CHANNELS"
  cmd+=" --set heads=$HEADS --set warmup=$warmup --set eval_every=$eval_every --set valid_tokens=$valid_tokens"
  [ $# -eq 0 ] || cmd+=" $*"
  echo "$cmd"
}

# lm_model_defaults CHANNELS HEADS CONTEXT: the language model's corpus and model (CORPUS, LAYERS,
# CHANNELS, HEADS, CONTEXT, VOCAB) where the environment does not set them: the State of the Union
# corpus with a 4096-token BPE, 4 layers, and the caller's width, heads and context (reproduce_lm.sh
# trains at 64 tokens; reproduce_qa.sh's models need 128 for a passage beside question and answer).
lm_model_defaults() {
  CORPUS=${CORPUS:-data/corpora/sotu}
  LAYERS=${LAYERS:-4}
  CHANNELS=${CHANNELS:-$1}
  HEADS=${HEADS:-$2}
  CONTEXT=${CONTEXT:-$3}
  VOCAB=${VOCAB:-4096}
}

# method_run PE COMMAND: one method's training (COMMAND, split into words) on $THREADS threads into
# $OUT/PE, its output in $OUT/PE/train.log, its wall time in $OUT/PE/wall_seconds; skipped when
# REUSE=1 and that file exists (the run finished earlier).
method_run() {
  local pe=$1 log="$OUT/$1/train.log"
  if [ "$REUSE" = 1 ] && [ -f "$OUT/$pe/wall_seconds" ]; then
    echo "reusing $OUT/$pe"
    return
  fi
  rm -rf "${OUT:?}/$pe"
  mkdir -p "$OUT/$pe"
  echo "training $pe (log: $log)"
  local t0
  t0=$(date +%s)
  OMP_NUM_THREADS=$THREADS stdbuf -oL $2 > "$log" 2>&1 || { echo "$(basename "$0"): $pe failed, see $log" >&2; return 1; }
  echo $(($(date +%s) - t0)) > "$OUT/$pe/wall_seconds"
  echo "trained $pe in $(cat "$OUT/$pe/wall_seconds") s"
}

# for_each_method FUNCTION: FUNCTION PE for every PE of $METHODS, $JOBS at a time; fails when any
# of them fails.
for_each_method() {
  local pe pid pids=()
  for pe in $METHODS; do
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
    "$1" "$pe" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
}
