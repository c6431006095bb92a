#!/usr/bin/env bash
# train_lm --precision bf16 --device cuda on the kernel emulator (the train_lm_emu build) against
# --device cpu --precision bf16, for a tiny GPT with learned and with SeqPE positions: the device line
# says bf16 runs on cuBLASLt, and the loss of each of 3 steps agrees within the bound below. Both
# devices round the same f32 operands to bf16 and sum in f32 (or wider), keep f32 master weights and
# AdamW moments, and run every other op in f32, so they differ only in summation order, plus the rare
# operand whose f32 value sits so near a bf16 rounding boundary that the summation-order difference
# moves it across (one bf16 ulp, 2^-8 relative, on one element). Also checks that bf16 ran on CUDA
# (its losses differ from the fp32 CUDA run's).
# Usage: lm_device_bf16.sh BUILD_APPS_DIR
set -euo pipefail
apps="$1"
export OMP_NUM_THREADS=1
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

source "$(dirname "$0")/lm_data.sh"
tiny_corpus "$tmp/corpus" 200
# channels 32 and heads 2: the MLP's 128 features make the fused GELU epilogue's leading dimension a
# multiple of 8, so cuBLASLt's fused bias + GELU runs (vocab 280 is too, for the classifier).
common=(--corpus "$tmp/corpus" --context 8 --batch 2 --steps 3 --lr 3e-3 --set vocab_size=280 --set layers=1
        --set channels=32 --set heads=2 --set warmup=1 --set log_every=1 --set eval_every=3 --set valid_tokens=32
        --set seqpe_max_position=100 --set seqpe_layers=1 --tf32 0)
losses() { python3 -c 'import json,sys; print(" ".join(repr(json.loads(l)["loss"]) for l in open(sys.argv[1]) if "\"loss\"" in l))' "$1/metrics.jsonl"; }
# Every loss of $2 within $3 relative of $1's (same count); with $4 = differ, also not equal.
agree() {
  python3 - "$1" "$2" "$3" "${4:-}" <<'PY'
import sys
a, b, tol = [float(x) for x in sys.argv[1].split()], [float(x) for x in sys.argv[2].split()], float(sys.argv[3])
assert len(a) == len(b) == 3, (a, b)
if sys.argv[4] == "differ":
    assert a != b, f"the bf16 losses equal the fp32 ones bit for bit: bf16 did not run ({a})"
for x, y in zip(a, b):
    assert abs(x - y) <= tol * abs(x), f"losses differ beyond {tol}: {a} vs {b}"
PY
}

for pe in ape seqpe; do
  "$apps/train_lm_emu" "${common[@]}" --pe $pe --device cpu --precision bf16 --out "$tmp/cpu_$pe" > /dev/null
  "$apps/train_lm_emu" "${common[@]}" --pe $pe --device cuda --precision bf16 --out "$tmp/cuda_$pe" \
    > "$tmp/cuda_$pe.log"
  "$apps/train_lm_emu" "${common[@]}" --pe $pe --device cuda --out "$tmp/fp32_$pe" > /dev/null
  grep -q 'device cuda:0 (kernel emulator), TF32 for f32 GEMMs off, matrix products in bf16' "$tmp/cuda_$pe.log" ||
    { echo "FAIL: no bf16 device line for $pe"; cat "$tmp/cuda_$pe.log"; exit 1; }
  echo "$pe cpu bf16:  $(losses "$tmp/cpu_$pe")"
  echo "$pe cuda bf16: $(losses "$tmp/cuda_$pe")"
  echo "$pe cuda fp32: $(losses "$tmp/fp32_$pe")"
  agree "$(losses "$tmp/cpu_$pe")" "$(losses "$tmp/cuda_$pe")" 1e-5 || { echo "FAIL: $pe bf16 on CUDA differs"; exit 1; }
  # bf16 against fp32: within bf16's precision (as tests/apps/lm_precision.sh), and not equal.
  agree "$(losses "$tmp/fp32_$pe")" "$(losses "$tmp/cuda_$pe")" 1e-3 differ ||
    { echo "FAIL: $pe bf16 on CUDA is not a bf16 run"; exit 1; }
done
echo "lm device bf16 test passed"
