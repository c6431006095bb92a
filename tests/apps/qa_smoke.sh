#!/usr/bin/env bash
# End-to-end smoke test of finetune_qa and eval_qa: trains tiny language models (RoPE, SeqPE) with
# train_lm on a generated corpus, builds small SQuAD v1.1 files, fine-tunes a few steps, checks
# that a fine-tuning run interrupted and resumed reproduces the uninterrupted loss curve exactly,
# and evaluates at two context lengths with the no-context baseline.
# Usage: qa_smoke.sh BUILD_APPS_DIR
set -euo pipefail
apps="$1"
export OMP_NUM_THREADS=1
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

names=(Alder Birch Cedar Dogwood Elm Fir Ginkgo Hazel Ivy Juniper Larch Maple Oak Pine Rowan Spruce Teak Willow Yew Zelkova)
passage() { echo "The tree $1 grows in zone $((10 + $2 * 7 % 80))."; }

mkdir -p "$tmp/corpus"
for split in train valid test; do
  for ((i = 0; i < 200; i++)); do passage "${names[i % 20]}" "$i"; done > "$tmp/corpus/$split.txt"
done

# squad FILE FIRST COUNT DISTRACTORS: questions FIRST..FIRST+COUNT-1, each gold passage placed at
# position (i mod (DISTRACTORS+1)) among DISTRACTORS other passages.
squad() {
  local file="$1" first="$2" count="$3" distractors="$4" sep="" i j
  { printf '{"version": "1.1", "data": [{"title": "trees", "paragraphs": ['
    for ((i = first; i < first + count; i++)); do
      local gold_at=$((i % (distractors + 1))) context="" start=0 answer="$((10 + i * 7 % 80))"
      for ((j = 0; j <= distractors; j++)); do
        local k=$(( j == gold_at ? i : (i + 3 * j + 1) % 20 ))
        [ "$j" -gt 0 ] && context+=" "
        if [ "$j" -eq "$gold_at" ]; then
          local text; text="$(passage "${names[k % 20]}" "$i")"
          start=$(( ${#context} + ${#text} - ${#answer} - 1 ))
          context+="$text"
        else
          context+="$(passage "${names[k % 20]}_$j" "$((i + j + 100))")"
        fi
      done
      printf '%s{"context": "%s", "qas": [{"id": "q%d", "question": "In which zone does %s grow?", "answers": [{"text": "%s", "answer_start": %d}]}]}' \
        "$sep" "$context" "$i" "${names[i % 20]}" "$answer" "$start"
      sep=", "
    done
    printf ']}]}\n'; } > "$file"
}
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
[ "$(losses "$tmp/seqpe" | wc -l)" -eq 6 ] || { echo "FAIL: expected 6 logged steps"; exit 1; }
grep -q '"valid_answer_ppl"' "$tmp/seqpe/metrics.jsonl" || { echo "FAIL: no validation in metrics.jsonl"; exit 1; }

"$apps/eval_qa" --checkpoint "$tmp/rope/best.ckpt.safetensors" --checkpoint "$tmp/seqpe/best.ckpt.safetensors" \
  --data "$tmp/test.{L}.json" --lengths 96,192 --no-context --out "$tmp/eval"
for f in qa_eval.md qa_eval.csv qa_contains.svg qa_em.svg predictions.jsonl; do
  [ -s "$tmp/eval/$f" ] || { echo "FAIL: eval_qa wrote no $f"; exit 1; }
done
# 2 runs x (2 lengths + no-context) x 4 buckets, plus the header.
[ "$(wc -l < "$tmp/eval/qa_eval.csv")" -eq 25 ] || { echo "FAIL: eval_qa CSV rows"; cat "$tmp/eval/qa_eval.csv"; exit 1; }
grep -q '^seqpe,seqpe,context,192,all,6,' "$tmp/eval/qa_eval.csv" || { echo "FAIL: eval_qa CSV content"; exit 1; }
[ "$(grep -c '^| seqpe | seqpe |' "$tmp/eval/qa_eval.md")" -eq 3 ] || { echo "FAIL: eval_qa table"; exit 1; }
[ "$(wc -l < "$tmp/eval/predictions.jsonl")" -eq 36 ] || { echo "FAIL: eval_qa predictions"; exit 1; }
grep -q '</svg>' "$tmp/eval/qa_contains.svg" || { echo "FAIL: eval_qa SVG"; exit 1; }
echo "qa smoke test passed"
