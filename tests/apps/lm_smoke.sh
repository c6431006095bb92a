#!/usr/bin/env bash
# End-to-end smoke test of train_lm, eval_lm, sample_lm and export_weights on a tiny generated
# corpus: trains RoPE and SeqPE models for a few steps, checks that a run interrupted and resumed
# reproduces the uninterrupted loss curve exactly, evaluates at two lengths (each run, then both
# with their plots and the loss by position bucket), plots the training curves (SeqPE's auxiliary
# losses logged), samples from both (a seed reproduces a sample; greedy past the training context)
# and exports SeqPE's weights in bf16 and f32.
# Usage: lm_smoke.sh BUILD_APPS_DIR
set -euo pipefail
apps="$1"
# The models are tiny: one thread is fastest, and results do not depend on the thread count.
export OMP_NUM_THREADS=1
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

source "$(dirname "$0")/lm_data.sh"
tiny_corpus "$tmp/corpus" 400

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
[ "$(grep -c '"contrastive_loss":[0-9]' "$tmp/seqpe/metrics.jsonl")" -eq 6 ] ||
  { echo "FAIL: SeqPE's contrastive loss is not logged at every logged step"; exit 1; }
grep -q '"transfer_loss":[0-9]' "$tmp/seqpe/metrics.jsonl" || { echo "FAIL: SeqPE's distillation loss is not logged"; exit 1; }
! grep -q 'contrastive_loss' "$tmp/rope/metrics.jsonl" || { echo "FAIL: a RoPE run logs a contrastive loss"; exit 1; }
"$apps/plot_training" --out "$tmp/curves.svg" "$tmp/rope" "$tmp/seqpe/"
grep -q '>seqpe contrastive<' "$tmp/curves.svg" || { echo "FAIL: plot_training lacks SeqPE's contrastive curve"; exit 1; }
[ "$(grep -c '<polyline' "$tmp/curves.svg")" -ge 5 ] || { echo "FAIL: plot_training should draw at least 5 curves"; exit 1; }

for run in rope seqpe; do
  out="$("$apps/eval_lm" --checkpoint "$tmp/$run/best.ckpt.safetensors" --lengths 16,32 --max-tokens 200 \
         --csv "$tmp/$run.csv")"
  echo "$out"
  grep -q '^| 32 | 200 |' <<< "$out" || { echo "FAIL: eval_lm table for $run"; exit 1; }
  [ "$(wc -l < "$tmp/$run.csv")" -eq 3 ] || { echo "FAIL: eval_lm CSV for $run"; exit 1; }
done
both="$("$apps/eval_lm" --checkpoint "$tmp/rope/best.ckpt.safetensors" --checkpoint "$tmp/seqpe/best.ckpt.safetensors" \
        --lengths 16,32 --max-tokens 200 --csv "$tmp/both.csv")"
echo "$both"
grep -q '^| 32 (2x) | [0-9.]* | [0-9.]* |$' <<< "$both" || { echo "FAIL: eval_lm comparison table"; exit 1; }
[ "$(wc -l < "$tmp/both.csv")" -eq 5 ] || { echo "FAIL: eval_lm CSV for two runs"; exit 1; }
for plot in both both_ratio both_positions; do
  [ "$(grep -c '<polyline' "$tmp/$plot.svg")" -eq 2 ] || { echo "FAIL: eval_lm's $plot.svg should have two lines"; exit 1; }
done
grep -q '^| 32 (2x) |' "$tmp/both.md" || { echo "FAIL: eval_lm markdown"; exit 1; }
# Buckets of the training length 16: at length 32, 200 tokens are 6 chunks of 32 and one of 8, so
# [0, 16) holds 6 x 16 + 8 = 104 predictions and [16, 32) 96; at length 16 one bucket of 200.
grep -q '^| \[16, 32) | - | [0-9.]* |$' "$tmp/both.md" || { echo "FAIL: eval_lm's loss by position table"; exit 1; }
positions=$(grep "rope/best.ckpt.safetensors,rope,valid," "$tmp/both_positions.csv" | cut -d, -f4-7 | tr '\n' ' ')
[ "$positions" = "16,0,16,200 32,0,16,104 32,16,32,96 " ] ||
  { echo "FAIL: eval_lm's positions CSV (length,start,end,tokens) is '$positions'"; exit 1; }

# The model.json's "model" section is the model eval_lm builds: an edit there alone takes effect
# (layer_norm_eps, which the run config does not state), and a field that the "config" section
# states otherwise is refused, naming both values.
cp -r "$tmp/seqpe" "$tmp/edited"
edit_model() {
  python3 -c 'import json, sys; p = sys.argv[1]; j = json.load(open(p)); j["model"][sys.argv[2]] = json.loads(sys.argv[3])
json.dump(j, open(p, "w"))' "$tmp/edited/best.model.json" "$1" "$2"
}
ppl_at_16() { "$apps/eval_lm" --checkpoint "$1/best.ckpt.safetensors" --lengths 16 --max-tokens 160 | grep '^| 16 |'; }
edit_model layer_norm_eps 10.0
[ "$(ppl_at_16 "$tmp/seqpe")" != "$(ppl_at_16 "$tmp/edited")" ] ||
  { echo "FAIL: editing the model.json's model section did not change the model"; exit 1; }
edit_model layers 2
if refused="$("$apps/eval_lm" --checkpoint "$tmp/edited/best.ckpt.safetensors" --lengths 16 2>&1)"; then
  echo "FAIL: eval_lm accepted a model section that contradicts the config section"; exit 1
fi
grep -q "best.model.json: the 'model' section has layers = 2 but the 'config' section gives 1" <<< "$refused" ||
  { echo "FAIL: the refusal does not name both values: $refused"; exit 1; }

# Sampling drops its last line (the timing) before comparing.
sample() { "$apps/sample_lm" --checkpoint "$tmp/$1/best.ckpt.safetensors" "${@:2}" | sed '$d'; }
first="$(sample seqpe --prompt "In the year" --max-new-tokens 24 --temperature 1.0 --top-k 50 --seed 3)"
echo "$first"
[ "$first" = "$(sample seqpe --prompt "In the year" --max-new-tokens 24 --temperature 1.0 --top-k 50 --seed 3)" ] ||
  { echo "FAIL: sample_lm with a fixed seed differs between runs"; exit 1; }
grep -q '^In the year' <<< "$first" || { echo "FAIL: sample_lm output lacks the prompt"; exit 1; }
# Greedy, 40 tokens past a 16-token training context (RoPE extends).
"$apps/sample_lm" --checkpoint "$tmp/rope/best.ckpt.safetensors" --prompt "the union" --max-new-tokens 40 \
  --temperature 0 | tee "$tmp/greedy.txt"
grep -q 'new tokens in' "$tmp/greedy.txt" || { echo "FAIL: sample_lm greedy"; exit 1; }

# export_weights: the weights alone, beside the checkpoint and sharing its model.json, in bf16 (about
# half the f32 export) or f32. eval_lm scores the f32 export exactly as the checkpoint and the bf16
# one within 1 %, sample_lm reads the export, and a checkpoint without its model.json is refused
# with nothing written.
"$apps/export_weights" --checkpoint "$tmp/seqpe/best.ckpt.safetensors"
"$apps/export_weights" --checkpoint "$tmp/seqpe/best.ckpt.safetensors" --dtype f32 --out "$tmp/f32.weights.safetensors"
bf16_bytes=$(stat -c %s "$tmp/seqpe/best.weights.safetensors") f32_bytes=$(stat -c %s "$tmp/f32.weights.safetensors")
[ $((100 * bf16_bytes)) -lt $((55 * f32_bytes)) ] ||
  { echo "FAIL: the bf16 export has $bf16_bytes bytes, the f32 one $f32_bytes"; exit 1; }
ppl() { "$apps/eval_lm" --checkpoint "$1" --lengths 16 --max-tokens 160 | grep '^| 16 |' | cut -d'|' -f5; }
checkpoint_ppl=$(ppl "$tmp/seqpe/best.ckpt.safetensors") bf16_ppl=$(ppl "$tmp/seqpe/best.weights.safetensors")
[ "$(ppl "$tmp/f32.weights.safetensors")" = "$checkpoint_ppl" ] ||
  { echo "FAIL: the f32 export scores otherwise than its checkpoint"; exit 1; }
awk -v a="$checkpoint_ppl" -v b="$bf16_ppl" 'BEGIN { exit !(b != a && (b - a) ^ 2 < (0.01 * a) ^ 2) }' ||
  { echo "FAIL: the bf16 export's perplexity $bf16_ppl, the checkpoint's $checkpoint_ppl"; exit 1; }
grep -q 'step 6)' <<< "$("$apps/sample_lm" --checkpoint "$tmp/seqpe/best.weights.safetensors" --prompt "In the year" \
  --max-new-tokens 8)" || { echo "FAIL: sample_lm on the bf16 export"; exit 1; }
cp "$tmp/seqpe/best.ckpt.safetensors" "$tmp/lonely.ckpt.safetensors"
if refused="$("$apps/export_weights" --checkpoint "$tmp/lonely.ckpt.safetensors" 2>&1)"; then
  echo "FAIL: export_weights exported a checkpoint without its model.json"; exit 1
fi
grep -q "cannot read $tmp/lonely.model.json" <<< "$refused" || { echo "FAIL: the refusal: $refused"; exit 1; }
[ ! -e "$tmp/lonely.weights.safetensors" ] || { echo "FAIL: a refused export wrote weights"; exit 1; }
echo "lm smoke test passed"
