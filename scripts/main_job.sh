#!/usr/bin/env bash
# The main job (the README's first command): installs the missing Debian packages, builds the
# language-model apps, prepares the King James Bible corpus, trains two small GPTs at context 128
# (4 layers, width 128, 4 heads, BPE vocabulary 2048), one with SeqPE and one with learned APE,
# evaluates both at 128, 256, 512 and 1024 tokens (1x to 8x the training length) on the validation
# split, prints the perplexity table and says where the checkpoints and the plot are.
# Training and evaluation take about five minutes on an idle 2-core machine (after the build):
# docs/results/main_job.md records how it was sized, and what a run printed.
#
# Usage: scripts/main_job.sh [extra train_lm options for both runs]   (e.g. --set layers=2)
# Environment: STEPS (training steps per model, default 500; more than the 20 warm-up steps),
#   RUN (output folder, default runs/main_job), BUILD (default build/release), SKIP_SETUP=1 (do not
#   run scripts/setup.sh), ENGINE_CUDA (default OFF: the job is sized for the CPU),
#   OMP_NUM_THREADS (default: every core), PRECISION (fp32 or bf16 matrix products in training and
#   evaluation, default fp32; ops/precision.h).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
build="${BUILD:-build/release}"
run="${RUN:-runs/main_job}"
steps="${STEPS:-500}"
precision="${PRECISION:-fp32}"
cores=$(getconf _NPROCESSORS_ONLN)  # nproc would answer OMP_NUM_THREADS
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$cores}"
clock() { date +%s; }

begin=$(clock)
[ "${SKIP_SETUP:-0}" = 1 ] || bash scripts/setup.sh
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DENGINE_CUDA="${ENGINE_CUDA:-OFF}" > /dev/null
cmake --build "$build" -j "$cores" --target train_lm eval_lm sample_lm
bash scripts/prepare_corpora.sh kjv
prepared=$(clock)

# Both runs share everything but the position encoding. Validation every 100 steps on the first
# 16k validation tokens keeps the best checkpoint; the evaluation below uses 32k tokens per length.
common=(--corpus data/corpora/kjv --set vocab_size=2048 --set layers=4 --set channels=128 --set heads=4
        --context 128 --batch 8 --steps "$steps" --lr 1e-3 --set warmup=20 --set eval_every=100
        --set log_every=20 --set valid_tokens=16384 --precision "$precision")
times=()
for pe in seqpe ape; do
  rm -rf "${run:?}/$pe"
  start=$(clock)
  echo "== training $pe ($steps steps)"
  "$build/apps/train_lm" "${common[@]}" --pe "$pe" --out "$run/$pe" "$@"
  times+=("$pe $(($(clock) - start)) s")
done
trained=$(clock)
echo "== evaluating both at 1x to 8x the training length"
"$build/apps/eval_lm" --checkpoint "$run/seqpe/best.ckpt.safetensors" --checkpoint "$run/ape/best.ckpt.safetensors" \
  --lengths 128,256,512,1024 --split valid --max-tokens 32768 --csv "$run/eval_valid.csv" --precision "$precision" \
  | tee "$run/eval.log"
done_at=$(clock)

echo
echo "setup, build and corpus $((prepared - begin)) s; training ${times[*]}; evaluation $((done_at - trained)) s"
echo "checkpoints: $run/seqpe/best.ckpt.safetensors, $run/ape/best.ckpt.safetensors (metrics.jsonl beside them)"
echo "table: $run/eval_valid.md   plot: $run/eval_valid.svg   CSV: $run/eval_valid.csv"
echo "sample: $build/apps/sample_lm --checkpoint $run/seqpe/best.ckpt.safetensors --prompt 'And God said'"
