#!/usr/bin/env bash
# Trains a small ViT on Fashion-MNIST (28 x 28, patch 4, width 64, depth 4) with each position
# encoding, evaluates all of them at 28..112 pixels (grids 7..28) in one eval_vit call and writes
# docs/results/vit.md with the table, the plot (docs/results/vit.svg), the commands and wall times.
# A hand-written reading of the numbers is kept in docs/results/vit_notes.md and copied in.
#
# Environment: BUILD (build dir, default build/release), OUT (runs, default build/vit_repro), RESULTS
# (where vit.md, vit.csv and vit.svg go, default docs/results), EPOCHS (default 2),
# THREADS (threads per training, default 2), JOBS (trainings run at once, default 1; on 2 cores
# JOBS=2 THREADS=1 keeps both busy with less synchronisation), TEST_SUBSET (images per evaluation
# resolution, default 2000), SIZES, METHODS (default "ape sin rope rope2d rope_mixed seqpe"),
# EXTRA (more train_vit options), REUSE (1: keep the runs in $OUT that finished, train the others;
# for completing an interrupted reproduction). Every method trains with the settings that took rope2d to 86 %
# (batch 64, warm-up 0.3 epoch; written to $OUT/train.json).
# rope2d trains at about 450-520 images/s on one core (docs/results/vit.md), about 2 minutes per
# epoch: EPOCHS=2 is roughly half an hour for the six methods on one core (SeqPE's steps cost more);
# EPOCHS=8, which took rope2d to 86 %, roughly two hours (one hour with JOBS=2 THREADS=1).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/reproduce.sh
BUILD=${BUILD:-build/release}
OUT=${OUT:-build/vit_repro}
EPOCHS=${EPOCHS:-2}
THREADS=${THREADS:-2}
JOBS=${JOBS:-1}
REUSE=${REUSE:-0}
TEST_SUBSET=${TEST_SUBSET:-2000}
SIZES=${SIZES:-28,42,56,84,112}
METHODS=${METHODS:-"ape sin rope rope2d rope_mixed seqpe"}
EXTRA=${EXTRA:-}
RESULTS=${RESULTS:-docs/results}
mkdir -p "$OUT" "$RESULTS"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build "$BUILD" --target train_vit eval_vit

cat > "$OUT/train.json" <<'JSON'
{"train": {"batch": 64, "warmup_epochs": 0.3, "log_every": 100}}
JSON

train_command() {
  echo "$BUILD/apps/train_vit --config $OUT/train.json --pe $1 --epochs $EPOCHS --threads $THREADS --out $OUT/$1 $EXTRA"
}

script_start=$(date +%s)
commands=()
timings=()
runs=()
train_one() {
  method_run "$1" "$(train_command "$1")"
  grep '^done:' "$OUT/$1/train.log"
}
for_each_method train_one
for pe in $METHODS; do
  commands+=("$(train_command "$pe")")
  best=$(grep '^done:' "$OUT/$pe/train.log" | sed 's/.*top-1 \([0-9.]*\).*/\1/')
  speed=$(grep '^step' "$OUT/$pe/train.log" | tail -1 | sed 's/.* \([0-9]*\) images\/s.*/\1/')
  timings+=("| $pe | $(cat "$OUT/$pe/wall_seconds") | $best | $speed |")
  runs+=(--run "$OUT/$pe")
done
eval_cmd="$BUILD/apps/eval_vit ${runs[*]} --sizes $SIZES --test-subset $TEST_SUBSET --threads $((JOBS * THREADS)) \
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
  echo "Written by scripts/reproduce_vit.sh on $(date -u +%Y-%m-%d) ($(nproc) cores, JOBS=$JOBS trainings at once,"
  echo "THREADS=$THREADS each)."
  echo "Trained at 28 x 28 (patch 4, a 7 x 7 grid), $EPOCHS epochs; evaluated on the first $TEST_SUBSET"
  echo "test images upsampled (bicubic) to each size. Wall time of this invocation: ${total} s$(
    [ "$REUSE" = 1 ] && echo ", some runs reused from an earlier one (each run's training time is below)")."
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
