#!/usr/bin/env bash
# Trains a small ViT on Fashion-MNIST (28 x 28, patch 4, width 64, depth 4) with each position
# encoding and two seeds, picks each run's best epoch on a validation split held out of the
# training set, evaluates every best checkpoint on the full 10,000-image test set at 28 pixels and
# on its first TEST_SUBSET images at 28..112 pixels (grids 7..28) in two evaluations (eval_vit:
# "upsample" magnifies the garment with the grid, "canvas" keeps it at 28 px on a larger blank
# canvas), and writes docs/results/vit.md: the tables (mean over the seeds and the spread), the
# plots (vit_upsample.svg, vit_canvas.svg), the commands and the wall times. A hand-written reading
# of the numbers is kept in docs/results/vit_notes.md and copied in.
#
# Environment: BUILD (build dir, default build/release), OUT (runs, default build/vit_repro), RESULTS
# (where vit.md, vit.csv and the plots go, default docs/results), METHODS (default "ape nope sin rope
# rope2d rope_mixed seqpe"), SEEDS (default "0 1"), EPOCHS (default 5), VALIDATION (training images
# held out to pick the epoch, default 5000: the same images in every run), JOBS (trainings at once,
# default 2) and THREADS (threads each, default 1: on 2 cores two one-thread trainings beat one
# two-thread training), TEST_SUBSET (test images of the resolution sweep, default 2000; 0: all), SIZES,
# ZOOM (train.zoom: random zoom in by up to this factor, default 1: none, as the runs were sized),
# EXTRA (more train_vit options), REUSE (1: keep the runs in $OUT that finished, train the others;
# for completing an interrupted reproduction). Every method trains with the settings that took
# rope2d to 86 % (batch 64, warm-up 0.3 epoch; written to $OUT/train.json with ZOOM). The two
# SeqPE runs go first so that the long ones do not end the run alone on one core.
#
# Sizing: the defaults took 3705 s (1 h 2 min) on 2 cores (Intel Xeon, family 6 model 167;
# 2026-12-07, docs/results/vit.md): training 43 min (a SeqPE run 890 s, the baselines 272-339 s
# each, two at a time, SeqPE's first), evaluation 16 min (the two sweeps side by side, then the full
# test set). The full test set at every size (TEST_SUBSET=0) would add about 5 x the sweeps' time;
# 112 px is most of it. (The estimate made before that run, 2 h 16 min, came from pilots on a
# machine loaded 11-fold and erred long by 2.2 times.)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/reproduce.sh
BUILD=${BUILD:-build/release}
OUT=${OUT:-build/vit_repro}
EPOCHS=${EPOCHS:-5}
SEEDS=${SEEDS:-"0 1"}
VALIDATION=${VALIDATION:-5000}
THREADS=${THREADS:-1}
JOBS=${JOBS:-2}
REUSE=${REUSE:-0}
TEST_SUBSET=${TEST_SUBSET:-2000}
SIZES=${SIZES:-28,42,56,84,112}
METHODS=${METHODS:-"ape nope sin rope rope2d rope_mixed seqpe"}
ZOOM=${ZOOM:-1}
EXTRA=${EXTRA:-}
RESULTS=${RESULTS:-docs/results}
mkdir -p "$OUT" "$RESULTS"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build "$BUILD" --target train_vit eval_vit

cat > "$OUT/train.json" <<JSON
{"train": {"batch": 64, "warmup_epochs": 0.3, "log_every": 100, "zoom": $ZOOM}}
JSON

# train_command PE SEED: the run of position encoding PE with seed SEED, into $OUT/PE-sSEED.
train_command() {
  echo "$BUILD/apps/train_vit --config $OUT/train.json --pe $1 --seed $2 --epochs $EPOCHS --validation $VALIDATION \
--threads $THREADS --out $OUT/$1-s$2 $EXTRA"
}

# Every (method, seed) run, SeqPE's first.
runs=()
for pe in seqpe $METHODS; do
  [ "$pe" = seqpe ] && [ ${#runs[@]} -gt 0 ] && continue
  [[ " $METHODS " == *" $pe "* ]] || continue
  for seed in $SEEDS; do runs+=("$pe-s$seed"); done
done

script_start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
commands=()
timings=()
train_one() {
  method_run "$1" "$(train_command "${1%-s*}" "${1##*-s}")"
  grep '^done:' "$OUT/$1/train.log"
}
METHODS="${runs[*]}" for_each_method train_one
for run in "${runs[@]}"; do
  commands+=("$(train_command "${run%-s*}" "${run##*-s}")")
  best=$(grep '^done:' "$OUT/$run/train.log" | sed 's/.*top-1 \([0-9.]*\).*/\1/')
  speed=$(grep '^step' "$OUT/$run/train.log" | tail -1 | sed 's/.* \([0-9]*\) images\/s.*/\1/')
  timings+=("| $run | $(cat "$OUT/$run/wall_seconds") | $best | $speed |")
done
run_dirs=""
for run in "${runs[@]}"; do run_dirs+=" --run $OUT/$run"; done
# The two evaluations side by side, one thread each (one plot each: 2 lines per method).
t0=$(date +%s)
eval_pids=()
for evaluation in upsample canvas; do
  cmd="$BUILD/apps/eval_vit$run_dirs --sizes $SIZES --evaluations $evaluation --test-subset $TEST_SUBSET \
--threads $THREADS --csv $OUT/eval_$evaluation.csv --plot $RESULTS/vit_$evaluation.svg"
  commands+=("$cmd")
  OMP_NUM_THREADS=$THREADS $cmd > "$OUT/eval_$evaluation.log" 2>&1 &
  eval_pids+=($!)
done
for pid in "${eval_pids[@]}"; do wait "$pid"; done
# Every run on the whole test set at the training size (the accuracy the paper's claim (i) is about).
cmd="$BUILD/apps/eval_vit$run_dirs --sizes 28 --evaluations upsample --test-subset 0 --threads $((JOBS * THREADS)) \
--csv $OUT/eval_full.csv --plot $OUT/eval_full.svg"
commands+=("$cmd")
OMP_NUM_THREADS=$((JOBS * THREADS)) $cmd > "$OUT/eval_full.log" 2>&1
eval_seconds=$(( $(date +%s) - t0 ))
combined="$RESULTS/vit.csv"
{
  cat "$OUT/eval_upsample.csv"
  tail -n +2 "$OUT/eval_canvas.csv"
  tail -n +2 "$OUT/eval_full.csv" | sed 's/,upsample,/,full,/'
} > "$combined"
total=$(( $(date +%s) - script_start ))
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# cell PE EVALUATION SIZE: the mean top-1 (%) of PE's runs over the seeds ± half their range.
cell() {
  awk -F, -v p="$1" -v e="$2" -v s="$3" '$2 == p && $3 == e && $4 == s {
      v = 100 * $6; n++; sum += v; if (n == 1 || v < lo) lo = v; if (n == 1 || v > hi) hi = v }
    END { if (n) printf "%.2f ± %.2f", sum / n, (hi - lo) / 2 }' "$combined"
}

# accuracy_table EVALUATION: a row per method: the full test set at 28 px, then a column per size.
accuracy_table() {
  local header="| PE | 28 px, full test set |" rule="|---|---|" s pe row
  for s in ${SIZES//,/ }; do header+=" $s px (grid $((s / 4))) |"; rule+="---|"; done  # patch 4
  echo "$header"; echo "$rule"
  for pe in $METHODS; do
    row="| $pe | $(cell "$pe" full 28) |"
    for s in ${SIZES//,/ }; do row+=" $(cell "$pe" "$1" "$s") |"; done
    echo "$row"
  done
}

{
  echo "# ViT on Fashion-MNIST: position encodings and resolution extrapolation"
  echo
  echo "Written by scripts/reproduce_vit.sh on $(date -u +%Y-%m-%d) ($(nproc) cores, $(host_cpu);"
  echo "JOBS=$JOBS trainings at once, THREADS=$THREADS each; load average"
  echo "$load_start at the start, $load_end at the end)."
  echo "Trained at 28 x 28 (patch 4, a 7 x 7 grid), $EPOCHS epochs on the training set less $VALIDATION images held out"
  echo "(the same ones for every run), which pick each run's best epoch; seeds $SEEDS$(
    [ "$ZOOM" != 1 ] && echo "; random zoom in by up to ${ZOOM}x"). Evaluated on the"
  echo "$([ "$TEST_SUBSET" = 0 ] && echo "full test set" || echo "first $TEST_SUBSET test images") at each size and on"
  echo "all 10,000 at 28 px. Wall time of this invocation: ${total} s$(
    [ "$REUSE" = 1 ] && echo ", some runs reused from an earlier one (each run's training time is below)")."
  echo
  echo "## Top-1 accuracy (%), upsampled: the garment grows with the grid"
  echo
  echo "Mean over the seeds ± half their range. The test images resized (bicubic) to each size."
  echo
  accuracy_table upsample
  echo
  echo "![accuracy against resolution, upsampled](vit_upsample.svg)"
  echo
  echo "## Top-1 accuracy (%), bigger canvas: the garment keeps its size"
  echo
  echo "The 28-pixel image centred (offset rounded down to whole patches) on a blank canvas of each size."
  echo
  accuracy_table canvas
  echo
  echo "![accuracy against resolution, bigger canvas](vit_canvas.svg)"
  echo
  echo "## Wall time"
  echo
  echo "| run | train (s) | best validation top-1 (28 px) | train images/s |"
  echo "|---|---|---|---|"
  printf '%s\n' "${timings[@]}"
  echo
  echo "Evaluation of all runs at every size, both evaluations side by side, then the full test set: ${eval_seconds} s."
  echo
  echo "## Commands"
  echo
  echo '```'
  printf '%s\n' "${commands[@]}"
  echo '```'
  echo
  if [ -f "$RESULTS/vit_notes.md" ]; then cat "$RESULTS/vit_notes.md"; fi
} > "$RESULTS/vit.md"
echo "wrote $RESULTS/vit.md"
