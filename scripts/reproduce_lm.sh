#!/usr/bin/env bash
# The language-modelling comparison (docs/method.md#language-modelling, scaled down): trains a GPT with each position
# encoding (ape, sin, rope, alibi, nope, seqpe) with one configuration on the State of the Union
# corpus, evaluates each at 1x, 2x, 4x, 8x and 16x the training length on the validation split
# (learned APE linearly interpolated, the others extended) and writes docs/results/lm.md: the
# table, the plot (docs/results/lm.svg), the exact commands, the wall time per method and a reading
# of the numbers. A hand-written reading in docs/results/lm_notes.md is copied in when present.
#
# Environment (defaults in brackets): STEPS [2000] training steps per method; LAYERS [4];
# CHANNELS [256]; HEADS [8]; CONTEXT [128]; BATCH [8]; VOCAB [4096]; LR [1e-3]; WARMUP [STEPS/20];
# EVAL_EVERY [STEPS/4]; VALID_TOKENS [32768] (validation tokens during training); MAX_TOKENS
# [131072] (tokens scored per evaluation length; 0 = the whole split); METHODS
# ["ape sin rope alibi nope seqpe"]; CORPUS [data/corpora/sotu]; BUILD [build/release];
# OUT [runs/reproduce_lm]; RESULTS [docs/results]; PRECISION [fp32] (fp32 or bf16 matrix products in
# training and evaluation); EXTRA (more train_lm options for every method);
# JOBS [1] trainings at once, each on THREADS [every core / JOBS] threads (JOBS=2 THREADS=1 keeps two
# cores busy with less synchronisation); REUSE [0] (1: keep the runs in $OUT that finished, train the
# others; for completing an interrupted reproduction). The evaluation runs on JOBS x THREADS threads.
# At the defaults each method trains for about 2000 x 8 x 128 = 2M tokens; see docs/results/lm.md
# for the measured wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/reproduce.sh
lm_model_defaults
STEPS=${STEPS:-2000}
BATCH=${BATCH:-8}
LR=${LR:-1e-3}
WARMUP=${WARMUP:-$((STEPS / 20 > 0 ? STEPS / 20 : 1))}
EVAL_EVERY=${EVAL_EVERY:-$((STEPS / 4 > 0 ? STEPS / 4 : 1))}
VALID_TOKENS=${VALID_TOKENS:-32768}
MAX_TOKENS=${MAX_TOKENS:-131072}
METHODS=${METHODS:-"ape sin rope alibi nope seqpe"}
BUILD=${BUILD:-build/release}
OUT=${OUT:-runs/reproduce_lm}
RESULTS=${RESULTS:-docs/results}
EXTRA=${EXTRA:-}
PRECISION=${PRECISION:-fp32}
cores=$(getconf _NPROCESSORS_ONLN)  # nproc would answer OMP_NUM_THREADS
JOBS=${JOBS:-1}
THREADS=${THREADS:-$((cores / JOBS > 0 ? cores / JOBS : 1))}
REUSE=${REUSE:-0}
lengths=$CONTEXT
for factor in 2 4 8 16; do lengths+=",$((CONTEXT * factor))"; done

cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build "$BUILD" --target train_lm eval_lm
[ "$CORPUS" != data/corpora/sotu ] || bash scripts/prepare_corpora.sh sotu
mkdir -p "$OUT" "$RESULTS"

train_command() {
  lm_train_command "$1" "$OUT/$1" "$STEPS" "$BATCH" "$LR" "$WARMUP" "$EVAL_EVERY" "$VALID_TOKENS" \
    --set log_every=$((EVAL_EVERY / 5 > 0 ? EVAL_EVERY / 5 : 1)) --precision $PRECISION $EXTRA
}
train_one() { method_run "$1" "$(train_command "$1")"; }

script_start=$(date +%s)
commands=()
timings=()
checkpoints=()
for_each_method train_one
for pe in $METHODS; do
  commands+=("OMP_NUM_THREADS=$THREADS $(train_command "$pe")")
  add_timing_row "$pe" "$OUT/$pe/metrics.jsonl" valid_ppl "$(cat "$OUT/$pe/wall_seconds")"
  checkpoints+=(--checkpoint "$OUT/$pe/best.ckpt.safetensors")
done

export OMP_NUM_THREADS=$((JOBS * THREADS))
run_logged "$BUILD/apps/eval_lm ${checkpoints[*]} --lengths $lengths --split valid --max-tokens $MAX_TOKENS --csv $OUT/eval_valid.csv --precision $PRECISION"
eval_seconds=$seconds
total=$(($(date +%s) - script_start))
cp "$OUT/eval_valid.svg" "$RESULTS/lm.svg"
cp "$OUT/eval_valid.csv" "$RESULTS/lm.csv"

# The reading computed from the CSV (run,pe,split,length,tokens,nll_per_token,token_ppl): per
# length the best method, and per method how much its perplexity grows from 1x to 16x.
reading() {
  awk -F, -v base="$CONTEXT" 'NR > 1 {
      ppl[$2, $4] = $7; if (!($2 in seen)) { seen[$2] = 1; order[++n] = $2 }
      if (!($4 in seen_len)) { seen_len[$4] = 1; lens[++m] = $4 } }
    END {
      for (j = 1; j <= m; ++j) {
        best = ""; for (i = 1; i <= n; ++i) if (best == "" || ppl[order[i], lens[j]] < ppl[best, lens[j]]) best = order[i]
        printf "- at %d tokens (%gx) the lowest perplexity is %s (%.2f)\n", lens[j], lens[j] / base, best, ppl[best, lens[j]]
      }
      for (i = 1; i <= n; ++i)
        printf "- %s: %.2f at 1x, %.2f at %gx (x%.2f)\n", order[i], ppl[order[i], lens[1]], ppl[order[i], lens[m]],
               lens[m] / base, ppl[order[i], lens[m]] / ppl[order[i], lens[1]]
    }' "$OUT/eval_valid.csv"
}

{
  echo "# Language modelling: position encodings and length extrapolation"
  echo
  echo "Written by \`scripts/reproduce_lm.sh\` on $(date -u +%Y-%m-%d) ($cores cores; $JOBS training(s) at once on $THREADS thread(s) each)."
  echo "Corpus $CORPUS (BPE vocabulary $VOCAB); GPT (layers $LAYERS, width $CHANNELS, heads $HEADS) trained at"
  echo "$CONTEXT tokens for $STEPS steps of $BATCH sequences ($((STEPS * BATCH * CONTEXT)) tokens); evaluated on the"
  echo "validation split, the first $MAX_TOKENS tokens (0 = all) at each length, in non-overlapping chunks"
  echo "scored alone (docs/method.md#language-modelling). Wall time of this invocation: $total s$(
  [ "$REUSE" = 1 ] && echo ", some runs reused from an earlier one (each run's training time is below)")."
  echo
  echo "## Token perplexity"
  echo
  awk '/^\| length/ { table = 1 } table && /^$/ { exit } table' "$OUT/eval_valid.md"
  echo
  echo "![token perplexity against evaluation length](lm.svg)"
  echo
  echo "## Reading (computed from the table)"
  echo
  reading
  echo
  echo "## Wall time"
  echo
  echo "| PE | train (s) | train tokens/s (last log) | best validation PPL at $CONTEXT |"
  echo "|---|---:|---:|---:|"
  printf '%s\n' "${timings[@]}"
  echo
  echo "Evaluation of all methods: $eval_seconds s (per length and method: the tables below)."
  echo
  echo "## Commands"
  echo
  echo '```'
  printf '%s\n' "${commands[@]}"
  echo '```'
  echo
  sed -n '/^## /,$p' "$OUT/eval_valid.md" | sed 's/^## /### /'
  if [ -f "$RESULTS/lm_notes.md" ]; then echo; cat "$RESULTS/lm_notes.md"; fi
} > "$RESULTS/lm.md.tmp"
mv "$RESULTS/lm.md.tmp" "$RESULTS/lm.md"
echo "wrote $RESULTS/lm.md and $RESULTS/lm.svg"
