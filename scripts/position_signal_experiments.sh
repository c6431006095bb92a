#!/usr/bin/env bash
# The position-signal experiments of docs/seqpe.md ("The position signal in trained language
# models"): the main job's SeqPE GPT trained for 300 steps with one setting changed per run, one
# run at a time on one thread, each into $OUT/NAME (metrics.jsonl holds the position signal at
# every validation). Then scripts/position_signal_table.py $OUT prints the table.
# Usage: scripts/position_signal_experiments.sh [NAME...]   (default: every experiment below)
# Environment: BUILD [build/release], OUT [runs/signal], STEPS [300], THREADS [1].
set -uo pipefail
cd "$(dirname "$0")/.."
build="${BUILD:-build/release}"
out="${OUT:-runs/signal}"
mkdir -p "$out"

# run NAME [train_lm options]: one experiment.
run() {
  local name="$1"; shift
  rm -rf "${out:?}/$name"
  local start; start=$(date +%s)
  OMP_NUM_THREADS="${THREADS:-1}" "$build/apps/train_lm" --corpus data/corpora/kjv --set vocab_size=2048 \
    --set layers=4 --set channels=128 --set heads=4 --context 128 --batch 8 --steps "${STEPS:-300}" --lr 1e-3 \
    --set warmup=20 --set eval_every=100 --set log_every=20 --set valid_tokens=16384 --pe seqpe --out "$out/$name" \
    "$@" > "$out/$name.log" 2>&1
  echo "$name rc=$? $(( $(date +%s) - start )) s"
}

declare -A options=(
  [base]=""
  [nope]="--pe nope"
  [alpha_30]="--set seqpe={\"scalar_scale\":30}"
  [qk_init_0.2]="--set seqpe={\"init_std\":0.2}"
  [max_pos_2048]="--set seqpe={\"pe_max_position\":2048}"
  [transfer_off]="--set seqpe={\"transfer\":{\"weight\":0}}"
  [contrastive_off]="--set seqpe={\"contrastive\":{\"weight\":0}}"
  [aux_off]="--set seqpe={\"contrastive\":{\"weight\":0},\"transfer\":{\"weight\":0}}"
  [lr_5e-5]="--lr 5e-5"
  [proj_none]="--set seqpe={\"qk_projection\":\"none\"}"
  [enc_init_0.1]="--set seqpe={\"init_std\":0.1,\"encoder\":{\"init_std\":0.1}}"
  [wd_0.1]="--set weight_decay=0.1"
  [warmup_100]="--set warmup=100"
  [enc_width_256]="--set seqpe={\"encoder\":{\"channels\":256}}"
  [sin]="--pe sin"
)
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(base nope alpha_30 qk_init_0.2 max_pos_2048 transfer_off contrastive_off aux_off
                                 lr_5e-5 proj_none enc_init_0.1 wd_0.1 warmup_100 enc_width_256 sin)
for name in "${names[@]}"; do
  [ -n "${options[$name]+set}" ] || { echo "unknown experiment '$name'" >&2; exit 1; }
  # shellcheck disable=SC2086  # the options are words
  run "$name" ${options[$name]}
done
