#!/usr/bin/env bash
# The main job: prepares the King James Bible corpus, trains a small GPT with SeqPE at context 128
# (4 layers, width 128, 4 heads, BPE vocabulary 2048) for a few hundred steps, then evaluates
# token perplexity at 128, 256, 512 and 1024 (1x to 8x the training length) on the validation split.
# Usage: scripts/main_job.sh [extra train_lm options]    (e.g. --steps 100, --pe rope)
# Environment: BUILD (default build/release), RUN (default runs/main_job), OMP_NUM_THREADS.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
build="${BUILD:-build/release}"
run="${RUN:-runs/main_job}"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build "$build" -j "$(nproc)" --target train_lm eval_lm
bash scripts/prepare_corpora.sh kjv

start=$(date +%s)
"$build/apps/train_lm" --corpus data/corpora/kjv --set vocab_size=2048 --pe seqpe --out "$run" \
  --set layers=4 --set channels=128 --set heads=4 --context 128 --batch 8 --steps 300 --lr 1e-3 \
  --set warmup=30 --set eval_every=100 --set log_every=10 --set valid_tokens=16384 "$@"
trained=$(date +%s)
"$build/apps/eval_lm" --checkpoint "$run/best.ckpt.safetensors" --lengths 128,256,512,1024 --split valid \
  --max-tokens 32768 --csv "$run/eval_valid.csv"
done_at=$(date +%s)
echo "training $((trained - start)) s, evaluation $((done_at - trained)) s; checkpoints, metrics and CSV in $run/"
