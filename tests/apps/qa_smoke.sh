#!/usr/bin/env bash
# End-to-end smoke test of finetune_qa and eval_qa: trains tiny language models (RoPE, SeqPE) with
# train_lm on a generated corpus, builds small SQuAD v1.1 files, fine-tunes a few steps, checks
# that a fine-tuning run interrupted and resumed reproduces the uninterrupted loss curve exactly,
# evaluates at two context lengths with the no-context baseline, reads a fine-tuned checkpoint
# with eval_lm and sample_lm, and starts and evaluates from export_weights' files.
# Usage: qa_smoke.sh BUILD_APPS_DIR
set -euo pipefail
apps="$1"
export OMP_NUM_THREADS=1
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

source "$(dirname "$0")/qa_data.sh"
qa_corpus "$tmp/corpus"
squad "$tmp/train.json" 0 40 1
squad "$tmp/valid.json" 40 8 1
squad "$tmp/test.96.json" 48 6 2
squad "$tmp/test.192.json" 48 6 6

lm=(--corpus "$tmp/corpus" --context 96 --batch 4 --steps 4 --lr 3e-3 --set vocab_size=300 --set layers=1
    --set channels=32 --set heads=2 --set warmup=1 --set log_every=2 --set eval_every=4 --set valid_tokens=96
    --set seqpe_max_position=1000)
"$apps/train_lm" "${lm[@]}" --pe rope --out "$tmp/lm_rope" > /dev/null
"$apps/train_lm" "${lm[@]}" --pe seqpe --out "$tmp/lm_seqpe" > /dev/null

qa=(--train "$tmp/train.json" --valid "$tmp/valid.json" --steps 6 --batch 4 --lr 3e-3 --set warmup=1
    --set log_every=1 --set eval_every=3)
losses() { grep -o '"loss":[^,]*,"lr":[^,]*,"step":[0-9]*' "$1/metrics.jsonl"; }
"$apps/finetune_qa" "${qa[@]}" --init "$tmp/lm_rope/best.ckpt.safetensors" --out "$tmp/rope"
"$apps/finetune_qa" "${qa[@]}" --init "$tmp/lm_seqpe/best.ckpt.safetensors" --out "$tmp/seqpe"
"$apps/finetune_qa" "${qa[@]}" --init "$tmp/lm_seqpe/best.ckpt.safetensors" --out "$tmp/resumed" --set stop_after=4
"$apps/finetune_qa" --resume "$tmp/resumed/last.ckpt.safetensors" --set stop_after=0
if [ "$(losses "$tmp/seqpe")" != "$(losses "$tmp/resumed")" ]; then
  echo "FAIL: the resumed loss curve differs"; diff <(losses "$tmp/seqpe") <(losses "$tmp/resumed"); exit 1
fi
# --init takes the language model's weights as export_weights writes them: in f32, the same curve.
"$apps/export_weights" --checkpoint "$tmp/lm_rope/best.ckpt.safetensors" --dtype f32 > /dev/null
"$apps/finetune_qa" "${qa[@]}" --init "$tmp/lm_rope/best.weights.safetensors" --out "$tmp/rope_from_export"
[ "$(losses "$tmp/rope")" = "$(losses "$tmp/rope_from_export")" ] ||
  { echo "FAIL: fine-tuning from the exported weights differs"; exit 1; }
[ "$(losses "$tmp/seqpe" | wc -l)" -eq 6 ] || { echo "FAIL: expected 6 logged steps"; exit 1; }
grep -q '"valid_answer_ppl"' "$tmp/seqpe/metrics.jsonl" || { echo "FAIL: no validation in metrics.jsonl"; exit 1; }

"$apps/eval_qa" --checkpoint "$tmp/rope/best.ckpt.safetensors" --checkpoint "$tmp/seqpe/best.ckpt.safetensors" \
  --data "$tmp/test.{L}.json" --lengths 96,192 --no-context --out "$tmp/eval"
for f in qa_eval.md qa_eval.csv qa_contains.svg qa_em.svg qa_answer_ppl.svg predictions.jsonl; do
  [ -s "$tmp/eval/$f" ] || { echo "FAIL: eval_qa wrote no $f"; exit 1; }
done
# 2 runs x (2 lengths + no-context) x 4 buckets, plus the header.
[ "$(wc -l < "$tmp/eval/qa_eval.csv")" -eq 25 ] || { echo "FAIL: eval_qa CSV rows"; cat "$tmp/eval/qa_eval.csv"; exit 1; }
grep -q '^seqpe,seqpe,context,192,all,6,' "$tmp/eval/qa_eval.csv" || { echo "FAIL: eval_qa CSV content"; exit 1; }
# Every row's answer perplexity (column 10 of 14) is a number above 1.
awk -F, 'NR > 1 && $5 == "all" && (NF != 14 || !($10 + 0 > 1)) { bad = 1 } END { exit bad }' "$tmp/eval/qa_eval.csv" ||
  { echo "FAIL: eval_qa answer perplexity"; cat "$tmp/eval/qa_eval.csv"; exit 1; }
# Each match rate lies inside its bootstrap interval (columns 11-14), which lies inside [0, 1].
awk -F, 'NR > 1 && $6 > 0 && !(0 <= $11 && $11 <= $7 && $7 <= $12 && $12 <= 1 &&
                               0 <= $13 && $13 <= $8 && $8 <= $14 && $14 <= 1) { bad = 1 } END { exit bad }' \
  "$tmp/eval/qa_eval.csv" || { echo "FAIL: eval_qa bootstrap intervals"; cat "$tmp/eval/qa_eval.csv"; exit 1; }
[ "$(grep -c '^| seqpe | seqpe |' "$tmp/eval/qa_eval.md")" -eq 3 ] || { echo "FAIL: eval_qa table"; exit 1; }
[ "$(wc -l < "$tmp/eval/predictions.jsonl")" -eq 36 ] || { echo "FAIL: eval_qa predictions"; exit 1; }
grep -q '</svg>' "$tmp/eval/qa_contains.svg" || { echo "FAIL: eval_qa SVG"; exit 1; }
# eval_qa reads exported weights too: in f32 they score exactly as their checkpoint.
"$apps/export_weights" --checkpoint "$tmp/rope/best.ckpt.safetensors" --dtype f32 > /dev/null
"$apps/eval_qa" --checkpoint "$tmp/rope/best.weights.safetensors" --data "$tmp/test.{L}.json" --lengths 96,192 \
  --no-context --out "$tmp/eval_export" > /dev/null
[ "$(grep '^rope,' "$tmp/eval_export/qa_eval.csv")" = "$(grep '^rope,' "$tmp/eval/qa_eval.csv")" ] ||
  { echo "FAIL: eval_qa scores the exported weights otherwise than their checkpoint"; exit 1; }

# The language-model apps read a fine-tuned checkpoint too (its model.json carries the QA keys).
lm_eval="$("$apps/eval_lm" --checkpoint "$tmp/seqpe/best.ckpt.safetensors" --corpus "$tmp/corpus" --lengths 96 \
  --max-tokens 96 --csv "$tmp/lm_eval.csv")"
grep -q '^| 96 | 96 |' <<< "$lm_eval" || { echo "FAIL: eval_lm on a finetune_qa checkpoint"; exit 1; }
sampled="$("$apps/sample_lm" --checkpoint "$tmp/rope/best.ckpt.safetensors" --prompt "the" --max-new-tokens 4 \
  --temperature 0)"
grep -q 'new tokens in' <<< "$sampled" || { echo "FAIL: sample_lm on a finetune_qa checkpoint"; exit 1; }
echo "qa smoke test passed"
