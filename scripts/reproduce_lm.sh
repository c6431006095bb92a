#!/usr/bin/env bash
# The language-modelling comparison (docs/method.md#language-modelling, scaled down) as a test of
# the paper's claim that SeqPE extrapolates better: trains a small GPT that learns positions with
# each position encoding (ape, sin, rope, alibi, nope, seqpe; two seeds for seqpe, nope and ape) and
# SeqPE without its contrastive loss, all with one configuration on the State of the Union corpus;
# keeps each run's checkpoint of lowest validation perplexity; scores every checkpoint on the TEST
# split at 1x to 16x the training length (learned APE linearly interpolated, the others extended),
# with SeqPE's runs also scored with their position term removed (α = 0 written into a copy of the
# model.json's model section); and writes docs/results/lm.md: the table with the seeds' spread,
# PPL(L) / PPL(1x), the gates of docs/seqpe.md with pass or fail (and "no comparison" when they
# fail), the loss by position bucket inside the long chunks, the scale against the paper, the
# commands and the wall time; plots lm.svg (perplexity), lm_ratio.svg (PPL(L) / PPL(1x), linear),
# lm_positions.svg (loss by position) and lm_training.svg (every training curve with SeqPE's
# auxiliary losses). docs/results/lm_notes.md, the hand-written reading, is copied in.
#
# Run names (RUNS) say what is trained: <pe>[_no_contrastive][_seed<N>], where _no_contrastive sets
# SeqPE's contrastive weight to 0 and _seed<N> trains with seed SEED + N - 1 (the runs without it
# use SEED).
#
# Environment (defaults in brackets): RUNS ["seqpe seqpe_seed2 seqpe_no_contrastive ape ape_seed2 nope
# nope_seed2 sin rope alibi"] (the slowest first, so that JOBS trainings end together); CORPUS
# [data/corpora/sotu]; VOCAB [4096]; LAYERS [4]; CHANNELS [128]; HEADS [4]; CONTEXT [64]; BATCH [32];
# STEPS [3900] per run; LR [1e-3]; WARMUP [STEPS/20]; EVAL_EVERY [STEPS/10] (validation and best
# checkpoint); VALID_TOKENS [65536] (validation tokens scored at each EVAL_EVERY); MAX_TOKENS [0]
# (test tokens scored per evaluation length; 0 = the whole split); SEED [10086]; PRECISION [bf16]
# (fp32 or bf16 matrix products, in training and evaluation); BUILD [build/release]; OUT
# [runs/reproduce_lm]; RESULTS [docs/results]; EXTRA (more train_lm options for every run); JOBS [2]
# trainings at once, each on THREADS [every core / JOBS] threads; REUSE [0] (1: keep the runs in $OUT
# that finished, train the others; for completing an interrupted reproduction). The evaluation runs on
# THREADS threads (its chunks are batch-1 forwards of small matrices, which a second thread hardly
# speeds up and which OpenMP's barriers slow down badly on a loaded machine).
#
# Sizing. Target: about 8M training tokens per model, the whole run within about 2.5 hours on 2
# quiet cores. A step is BATCH x CONTEXT = 32 x 64 = 2048 tokens, so 3900 steps are 7.99M tokens,
# about 4 passes over SOTU's 1.97M training tokens (each run keeps its checkpoint of lowest
# validation perplexity, so a late overfit does not reach the table). The pilot (2026-12-07, Intel
# Xeon family 6 model 167 with AMX, 2 cores shared with seven other sessions at load average 19-25:
# wall times were 5-14x the CPU times, so the figures are the processes' user CPU seconds, which is
# what one quiet core gives): 200 steps of the defaults, one thread, two trainings at a time,
# validation once on 16,384 tokens, command as below with --steps 200:
#                                bf16 (AMX)              fp32
#   ape, width 128                26.4 s (0.132 s/step)   43.9 s (0.220 s/step)
#   seqpe, width 128              46.6 s (0.233 s/step)   73.7 s (0.369 s/step)
#   ape, width 192 (6 heads)      41.3 s (0.206 s/step)   -
#   seqpe, width 192 (6 heads)    73.6 s (0.368 s/step)   -
# eval_lm, one thread: 16,384 test tokens at 64 or at 1024 in under 1 s (0.4-0.8 s, start-up
# included), so at most ~50 us per token at width 128.
# Arithmetic at the defaults (bf16, width 128, 3900 steps): a SeqPE run 0.233 x 3900 = 910 s, any
# other 0.132 x 3900 = 515 s (RoPE, ALiBi, sin and NoPE cost about APE's); ten runs two at a time,
# the three SeqPE runs first: 910 (seqpe, seqpe_seed2), then the rest packed on two cores: about
# 3360 s of training. Validation: 10 x 65,536 tokens per run, about 3 s each. Evaluation: 13
# checkpoints (10 runs, 3 with α = 0) x 5 lengths x 240,289 test tokens = 15.6M scored tokens x
# 50 us = about 780 s. Total about 70 minutes on this CPU, half the budget: room for a slower
# CPU (without AMX, bf16 products run on AVX512-BF16 or are emulated, docs/benchmarks.md) or a
# loaded one. Within the 2.5 hours also fit, on this CPU: PRECISION=fp32 (0.369 / 0.220 s per
# step: about 95 minutes of training, 110 in all) or CHANNELS=192 HEADS=6 (0.368 / 0.206 s per
# step: about 90 minutes of training, up to 20 of evaluation). bf16 is the default as in the
# reference's training; at 200 steps it moved validation perplexity by +0.02 % for APE (372.879
# against fp32's 372.796) and +1.3 % for SeqPE (323.138 against 318.985), one seed each
# (docs/results/lm_notes.md, "Precision").
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/reproduce.sh
# This invocation as the report records it: the settings the environment gave, then the script.
invocation=""
for setting in RUNS CORPUS VOCAB LAYERS CHANNELS HEADS CONTEXT BATCH STEPS LR WARMUP EVAL_EVERY VALID_TOKENS MAX_TOKENS \
               SEED PRECISION BUILD OUT RESULTS EXTRA JOBS THREADS REUSE; do
  [ -z "${!setting+set}" ] || invocation+="$setting=\"${!setting}\" "
done
invocation+="bash scripts/reproduce_lm.sh"
RUNS=${RUNS:-"seqpe seqpe_seed2 seqpe_no_contrastive ape ape_seed2 nope nope_seed2 sin rope alibi"}
lm_model_defaults 128 4 64  # CORPUS, VOCAB, LAYERS, CHANNELS, HEADS, CONTEXT
BATCH=${BATCH:-32}
STEPS=${STEPS:-3900}
LR=${LR:-1e-3}
WARMUP=${WARMUP:-$((STEPS / 20 > 0 ? STEPS / 20 : 1))}
EVAL_EVERY=${EVAL_EVERY:-$((STEPS / 10 > 0 ? STEPS / 10 : 1))}
VALID_TOKENS=${VALID_TOKENS:-65536}
MAX_TOKENS=${MAX_TOKENS:-0}
SEED=${SEED:-10086}
PRECISION=${PRECISION:-bf16}
BUILD=${BUILD:-build/release}
OUT=${OUT:-runs/reproduce_lm}
RESULTS=${RESULTS:-docs/results}
EXTRA=${EXTRA:-}
cores=$(getconf _NPROCESSORS_ONLN)  # nproc would answer OMP_NUM_THREADS
JOBS=${JOBS:-2}
THREADS=${THREADS:-$((cores / JOBS > 0 ? cores / JOBS : 1))}
REUSE=${REUSE:-0}
METHODS=$RUNS  # what scripts/lib/reproduce.sh's for_each_method iterates
lengths=$CONTEXT
for factor in 2 4 8 16; do lengths+=",$((CONTEXT * factor))"; done

# The train_lm options that a run's name asks for (see the header); refuses a name it cannot read.
run_options() {
  local name=$1
  [[ $name =~ ^(ape|sin|rope|alibi|nope|seqpe)(_no_contrastive)?(_seed([0-9]+))?$ ]] ||
    { echo "$(basename "$0"): cannot read the run name '$name': expected <pe>[_no_contrastive][_seed<N>]" >&2; exit 1; }
  local options="--pe ${BASH_REMATCH[1]} --seed $((SEED + ${BASH_REMATCH[4]:-1} - 1))"
  [ -z "${BASH_REMATCH[2]}" ] || options+=" --set seqpe_contrastive_weight=0"
  echo "$options"
}
for name in $RUNS; do run_options "$name" > /dev/null; done

cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build "$BUILD" --target train_lm eval_lm plot_training
[ "$CORPUS" != data/corpora/sotu ] || bash scripts/prepare_corpora.sh sotu
mkdir -p "$OUT" "$RESULTS"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

train_command() {
  # shellcheck disable=SC2046  # the options are words
  lm_train_command "$(run_options "$1" | cut -d' ' -f2)" "$OUT/$1" "$STEPS" "$BATCH" "$LR" "$WARMUP" "$EVAL_EVERY" \
    "$VALID_TOKENS" $(run_options "$1" | cut -d' ' -f3-) \
    --set log_every=$((EVAL_EVERY / 5 > 0 ? EVAL_EVERY / 5 : 1)) --precision $PRECISION $EXTRA
}
train_one() { method_run "$1" "$(train_command "$1")"; }

script_start=$(date +%s)
commands=()
timings=()
checkpoints=()
for_each_method train_one
train_seconds=$(($(date +%s) - script_start))
for name in $RUNS; do
  commands+=("OMP_NUM_THREADS=$THREADS $(train_command "$name")")
  add_timing_row "$name" "$OUT/$name/metrics.jsonl" valid_ppl "$(cat "$OUT/$name/wall_seconds")"
  checkpoints+=(--checkpoint "$OUT/$name/best.ckpt.safetensors")
done
# SeqPE's runs once more with the position term removed (no retraining).
for name in $RUNS; do
  [[ $name == seqpe* ]] || continue
  commands+=("python3 scripts/lib/seqpe_ablation.py $OUT/$name $OUT/${name}_alpha0")
  checkpoints+=(--checkpoint "$(python3 scripts/lib/seqpe_ablation.py "$OUT/$name" "$OUT/${name}_alpha0")")
done

export OMP_NUM_THREADS=$THREADS
run_logged "$BUILD/apps/eval_lm ${checkpoints[*]} --lengths $lengths --split test --max-tokens $MAX_TOKENS --csv $OUT/eval_test.csv --precision $PRECISION"
eval_seconds=$seconds
run_logged "$BUILD/apps/plot_training --out $OUT/training.svg $(for name in $RUNS; do printf '%s ' "$OUT/$name"; done)"
total=$(($(date +%s) - script_start))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
cp "$OUT/eval_test.csv" "$RESULTS/lm.csv"
cp "$OUT/eval_test_positions.csv" "$RESULTS/lm_positions.csv"
cp "$OUT/eval_test.svg" "$RESULTS/lm.svg"
cp "$OUT/eval_test_ratio.svg" "$RESULTS/lm_ratio.svg"
cp "$OUT/eval_test_positions.svg" "$RESULTS/lm_positions.svg"
cp "$OUT/training.svg" "$RESULTS/lm_training.svg"
cpu=$(host_cpu)

{
  echo "# Language modelling: position encodings and length extrapolation"
  echo
  echo "Written by \`scripts/reproduce_lm.sh\` on $(date -u +%Y-%m-%d) on $cpu, $cores cores, $JOBS training(s) at"
  echo "once on $THREADS thread(s) each; load average $load_before (1, 5, 15 min) at the start, $load_after at the end."
  echo "Wall time of this invocation: $total s (training $train_seconds s, evaluation $eval_seconds s)$(
  [ "$REUSE" = 1 ] && echo "; some runs reused from an earlier invocation (each run's training time is below)")."
  echo
  echo "Corpus $CORPUS, BPE vocabulary $VOCAB; GPT with $LAYERS layers, width $CHANNELS, $HEADS heads, trained at $CONTEXT"
  echo "tokens for $STEPS steps of $BATCH sequences ($((STEPS * BATCH * CONTEXT)) tokens per run), AdamW lr $LR with $WARMUP"
  echo "warm-up steps then linear decay, $PRECISION matrix products. Each run keeps the checkpoint of lowest validation"
  echo "perplexity at $CONTEXT tokens (the first $VALID_TOKENS validation tokens, every $EVAL_EVERY steps). The tables are"
  echo "on the test split (scripts/prepare_corpora.sh: of the addresses in file order, the tenth of every ten;"
  echo "validation takes the ninth, training the rest; no address is in two splits), $([ "$MAX_TOKENS" = 0 ] && echo "all of it" ||
  echo "its first $MAX_TOKENS tokens") at each length, in non-overlapping chunks scored alone"
  echo "(docs/method.md#language-modelling). \`*_alpha0\` rows: the SeqPE run of that name with α = 0 written"
  echo "into its model.json's model section (the attn_scalar term removed, same weights)."
  echo
  python3 scripts/lm_report.py "$OUT"
  echo "## Plots"
  echo
  echo "![token perplexity against evaluation length](lm.svg)"
  echo
  echo "![perplexity relative to the training length, linear axis](lm_ratio.svg)"
  echo
  echo "![loss by position inside the longest chunks](lm_positions.svg)"
  echo
  echo "![training curves: training loss (solid), validation NLL (dashed), SeqPE's auxiliary losses](lm_training.svg)"
  echo
  echo "## Wall time"
  echo
  echo "| run | train (s) | train tokens/s (last log) | best validation PPL at $CONTEXT |"
  echo "|---|---:|---:|---:|"
  printf '%s\n' "${timings[@]}"
  echo
  echo "Evaluation of all checkpoints: $eval_seconds s (per length and run: the tables below)."
  echo
  echo "## Commands"
  echo
  echo '```'
  echo "$invocation"
  printf '%s\n' "${commands[@]}"
  echo '```'
  echo
  echo "## Every run"
  echo
  awk '/^\| length/ { table = 1 } table && /^$/ { exit } table' "$OUT/eval_test.md"
  echo
  sed -n '/^## /,$p' "$OUT/eval_test.md" | sed 's/^## /### /'
  if [ -f "$RESULTS/lm_notes.md" ]; then echo; cat "$RESULTS/lm_notes.md"; fi
} > "$RESULTS/lm.md.tmp"
mv "$RESULTS/lm.md.tmp" "$RESULTS/lm.md"
echo "wrote $RESULTS/lm.md and its plots (lm.svg, lm_ratio.svg, lm_positions.svg, lm_training.svg)"
