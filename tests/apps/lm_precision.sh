#!/usr/bin/env bash
# --precision bf16 in train_lm and eval_lm: a tiny SeqPE GPT trained 4 steps with bf16 matrix
# products follows the fp32 run's loss curve to bf16's precision (and is not the fp32 run: the bf16
# products ran), says which kernel ran them, records "precision": "bf16" in run.json and model.json,
# and its perplexity under eval_lm --precision bf16 is the fp32 evaluation's to bf16's precision.
# (bf16 on CUDA against the CPU: tests/apps/lm_device.sh.)
# Usage: lm_precision.sh BUILD_APPS_DIR
set -euo pipefail
apps="$1"
export OMP_NUM_THREADS=1
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

source "$(dirname "$0")/lm_data.sh"
tiny_corpus "$tmp/corpus" 200
tiny_seqpe_run_options "$tmp/corpus" 1
# bf16 rounds each GEMM operand to 8 significant bits (relative error up to 2^-9 = 2e-3, random in
# sign, so a dot product's error is far smaller); sums and every other op stay f32. Measured on the
# Xeon (AMX): the 4 losses agree to 8e-6 relative, the perplexities to 5e-5; 1e-3 leaves room for
# other CPUs' kernels (AVX512-BF16, the fallback) while a wrong product (whole percents) fails.
agree() {
  python3 - "$1" "$2" <<'PY'
import sys
a, b = [float(x) for x in sys.argv[1].split()], [float(x) for x in sys.argv[2].split()]
assert len(a) == len(b) == 4, (a, b)
assert a != b, f"bf16 losses equal the fp32 ones bit for bit: the bf16 products did not run ({a})"
for x, y in zip(a, b):
    assert abs(x - y) <= 1e-3 * abs(x), f"bf16 losses differ from fp32 beyond 1e-3 relative: {a} vs {b}"
PY
}

"$apps/train_lm" "${tiny_seqpe_run[@]}" --out "$tmp/fp32" > "$tmp/fp32.log"
"$apps/train_lm" "${tiny_seqpe_run[@]}" --precision bf16 --out "$tmp/bf16" > "$tmp/bf16.log"
grep -q '^train_lm: matrix products in fp32$' "$tmp/fp32.log" || { echo "FAIL: no fp32 line"; exit 1; }
grep -q '^train_lm: matrix products in bf16 on ' "$tmp/bf16.log" || { echo "FAIL: no bf16 line"; exit 1; }
echo "fp32: $(logged_losses "$tmp/fp32")"
echo "bf16: $(logged_losses "$tmp/bf16")"
agree "$(logged_losses "$tmp/fp32")" "$(logged_losses "$tmp/bf16")"
for file in run.json best.model.json; do
  python3 - "$tmp/bf16/$file" "$tmp/fp32/$file" <<'PY'
import json, sys
bf16, fp32 = (json.load(open(f)) for f in sys.argv[1:])
config = lambda j: j.get("config", j)
assert config(bf16)["precision"] == "bf16", f"{sys.argv[1]}: precision is not bf16"
assert config(fp32)["precision"] == "fp32", f"{sys.argv[2]}: precision is not fp32"
PY
done

# eval_lm of the bf16 checkpoint in either precision: the same perplexity to bf16's precision.
for precision in fp32 bf16; do
  "$apps/eval_lm" --checkpoint "$tmp/bf16/best.ckpt.safetensors" --lengths 16 --max-tokens 64 \
    --precision $precision --csv "$tmp/eval_$precision.csv" > "$tmp/eval_$precision.log"
  grep -q "^eval_lm: matrix products in $precision" "$tmp/eval_$precision.log" ||
    { echo "FAIL: no $precision line in eval_lm"; cat "$tmp/eval_$precision.log"; exit 1; }
done
python3 - "$tmp/eval_fp32.csv" "$tmp/eval_bf16.csv" <<'PY'
import csv, sys
fp32, bf16 = (float(next(csv.DictReader(open(f)))["token_ppl"]) for f in sys.argv[1:])
print(f"eval_lm perplexity fp32 {fp32!r} bf16 {bf16!r}")
assert fp32 != bf16 and abs(fp32 - bf16) <= 1e-3 * fp32, (fp32, bf16)
PY

echo "lm_precision: OK"
