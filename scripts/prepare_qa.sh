#!/usr/bin/env bash
# Builds the offline long-context QA set (docs/qa_data.md) from Debian's iso-codes, tzdata and
# wordnet-base, measured in tokens of the language model's tokenizer: the BPE tokenizer of the
# KJV corpus at the vocabulary size of the LM runs (scripts/main_job.sh), trained on first use.
# Idempotent: an output folder that already has its stats.json is left alone.
# Usage: scripts/prepare_qa.sh [extra build_qa options]     (e.g. --eval-questions 1000)
# Environment: BUILD (default build/release), CORPUS (default data/corpora/kjv), VOCAB_SIZE (2048),
#   TRAIN_LENGTH (512), EVAL_LENGTHS (512,1024,2048,4096), OUT (data/qa/<corpus>_<vocab>).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
build="${BUILD:-build/release}"
corpus="${CORPUS:-data/corpora/kjv}"
vocab_size="${VOCAB_SIZE:-2048}"
train_length="${TRAIN_LENGTH:-512}"
eval_lengths="${EVAL_LENGTHS:-512,1024,2048,4096}"
out="${OUT:-data/qa/$(basename "$corpus")_$vocab_size}"

if [ -f "$out/stats.json" ]; then echo "qa: already built in $out (remove it to rebuild)"; exit 0; fi
bash scripts/setup.sh > /dev/null
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build "$build" -j "$(nproc)" --target build_qa
[ "$corpus" = data/corpora/kjv ] && bash scripts/prepare_corpora.sh kjv
"$build/apps/build_qa" --out "$out" --corpus "$corpus" --vocab-size "$vocab_size" \
  --train-length "$train_length" --eval-lengths "$eval_lengths" "$@"
