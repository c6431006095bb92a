#!/usr/bin/env bash
# End-to-end smoke test of train_lm and eval_lm on a tiny generated corpus: trains RoPE and SeqPE
# models for a few steps, checks that a run interrupted and resumed reproduces the uninterrupted
# loss curve exactly, and evaluates at two lengths.
# Usage: lm_smoke.sh BUILD_APPS_DIR
set -euo pipefail
apps="$1"
# The models are tiny: one thread is fastest, and results do not depend on the thread count.
export OMP_NUM_THREADS=1
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/corpus"
for split in train valid test; do
  lines=400; [ "$split" != train ] && lines=40
  for ((i = 0; i < lines; i++)); do
    echo "In the year $((1790 + i % 230)) the $split address spoke of peace, trade and the union of states."
  done > "$tmp/corpus/$split.txt"
done

common=(--corpus "$tmp/corpus" --context 16 --batch 4 --steps 6 --lr 3e-3 --set vocab_size=300
        --set layers=1 --set channels=32 --set heads=2 --set warmup=2 --set log_every=1 --set eval_every=3
        --set valid_tokens=160 --set seqpe_max_position=1000)
losses() { grep -o '"loss":[^,]*,"lr":[^,]*,"step":[0-9]*' "$1/metrics.jsonl"; }

"$apps/train_lm" "${common[@]}" --pe rope --out "$tmp/rope"
"$apps/train_lm" "${common[@]}" --pe seqpe --out "$tmp/seqpe"
"$apps/train_lm" "${common[@]}" --pe seqpe --out "$tmp/resumed" --set stop_after=3
"$apps/train_lm" --resume "$tmp/resumed/last.ckpt.safetensors" --set stop_after=0
if [ "$(losses "$tmp/seqpe")" != "$(losses "$tmp/resumed")" ]; then
  echo "FAIL: the resumed loss curve differs"; diff <(losses "$tmp/seqpe") <(losses "$tmp/resumed"); exit 1
fi
[ "$(losses "$tmp/seqpe" | wc -l)" -eq 6 ] || { echo "FAIL: expected 6 logged steps"; exit 1; }

for run in rope seqpe; do
  out="$("$apps/eval_lm" --checkpoint "$tmp/$run/best.ckpt.safetensors" --lengths 16,32 --max-tokens 200 \
         --csv "$tmp/$run.csv")"
  echo "$out"
  echo "$out" | grep -q '^| 32 | 200 |' || { echo "FAIL: eval_lm table for $run"; exit 1; }
  [ "$(wc -l < "$tmp/$run.csv")" -eq 3 ] || { echo "FAIL: eval_lm CSV for $run"; exit 1; }
done
echo "lm smoke test passed"
