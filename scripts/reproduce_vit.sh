#!/usr/bin/env bash
# Trains a small ViT on Fashion-MNIST (28 x 28, patch 4, width 64, depth 4) with each position
# encoding, evaluates all of them at 28..112 pixels (grids 7..28) in one eval_vit call and writes
# docs/results/vit.md with the table, the plot (docs/results/vit.svg), the commands and wall times.
# A hand-written reading of the numbers is kept in docs/results/vit_notes.md and copied in.
#
# Environment: BUILD (build dir, default build), OUT (runs, default build/vit_repro), EPOCHS (default 2),
# THREADS (default 2), TEST_SUBSET (images per evaluation resolution, default 2000), SIZES,
# METHODS (default "ape sin rope rope2d rope_mixed seqpe"), EXTRA (more train_vit options).
# rope2d trains at about 450-520 images/s on one core (docs/results/vit.md), about 2 minutes per
# epoch: EPOCHS=2 is roughly half an hour for the six methods (SeqPE's steps cost more); EPOCHS=8,
# which took rope2d to 86 %, roughly two hours.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=${OUT:-build/vit_repro}
EPOCHS=${EPOCHS:-2}
THREADS=${THREADS:-2}
TEST_SUBSET=${TEST_SUBSET:-2000}
SIZES=${SIZES:-28,42,56,84,112}
METHODS=${METHODS:-"ape sin rope rope2d rope_mixed seqpe"}
EXTRA=${EXTRA:-}
RESULTS=docs/results
mkdir -p "$OUT" "$RESULTS"
cmake --build "$BUILD" --target train_vit eval_vit

script_start=$(date +%s)
commands=()
timings=()
runs=()
for pe in $METHODS; do
  rm -rf "${OUT:?}/$pe"
  mkdir -p "$OUT/$pe"
  train_cmd="$BUILD/apps/train_vit --pe $pe --epochs $EPOCHS --threads $THREADS --out $OUT/$pe $EXTRA"
  commands+=("$train_cmd")
  t0=$(date +%s)
  $train_cmd | tee "$OUT/$pe/train.log"
  t1=$(date +%s)
  best=$(grep '^done:' "$OUT/$pe/train.log" | sed 's/.*top-1 \([0-9.]*\).*/\1/')
  speed=$(grep '^step' "$OUT/$pe/train.log" | tail -1 | sed 's/.* \([0-9]*\) images\/s/\1/')
  timings+=("| $pe | $((t1 - t0)) | $best | $speed |")
  runs+=(--run "$OUT/$pe")
done
eval_cmd="$BUILD/apps/eval_vit ${runs[*]} --sizes $SIZES --test-subset $TEST_SUBSET --threads $THREADS \
--csv $RESULTS/vit.csv --plot $RESULTS/vit.svg"
commands+=("$eval_cmd")
t0=$(date +%s)
$eval_cmd | tee "$OUT/eval.log"
eval_seconds=$(( $(date +%s) - t0 ))
total=$(( $(date +%s) - script_start ))
combined="$RESULTS/vit.csv"

{
  echo "# ViT on Fashion-MNIST: position encodings and resolution extrapolation"
  echo
  echo "Written by scripts/reproduce_vit.sh on $(date -u +%Y-%m-%d) ($(nproc) cores, THREADS=$THREADS)."
  echo "Trained at 28 x 28 (patch 4, a 7 x 7 grid), $EPOCHS epochs; evaluated on the first $TEST_SUBSET"
  echo "test images upsampled (bicubic) to each size. Total wall time: ${total} s."
  echo
  echo "## Top-1 accuracy (%)"
  echo
  header="| PE |"; rule="|---|"
  for s in ${SIZES//,/ }; do header+=" $s px (grid $((s / 4))) |"; rule+="---|"; done  # patch 4
  echo "$header"; echo "$rule"
  for pe in $METHODS; do
    row="| $pe |"
    for s in ${SIZES//,/ }; do
      row+=" $(awk -F, -v p="$pe" -v s="$s" '$1 == p && $3 == s { printf "%.2f", 100 * $5 }' "$combined") |"
    done
    echo "$row"
  done
  echo
  echo "![accuracy against resolution](vit.svg)"
  echo
  echo "## Wall time"
  echo
  echo "| PE | train (s) | best test top-1 at 28 px (full test set, during training) | train images/s |"
  echo "|---|---|---|---|"
  printf '%s\n' "${timings[@]}"
  echo
  echo "Evaluation of all runs at every size: ${eval_seconds} s."
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
