#!/usr/bin/env bash
# train_lm --device cuda as a 2-rank job on 2 emulated GPUs (the train_lm_emu build: each rank picks
# its own emulated device, the gradients all-reduce over the emulated NCCL) against 1 CPU process on
# the same global batch: the loss of each of 4 steps agrees to 1e-5 relative (f32 kernels that sum
# in another order), plain, with ZeRO-1, with 2 accumulated micro-batches and with both.
# Usage: lm_dist_emu.sh BUILD_APPS_DIR MPIEXEC
set -euo pipefail
apps="$1"
mpiexec="$2"
export OMP_NUM_THREADS=1 ENGINE_EMU_DEVICES=2
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

source "$(dirname "$0")/lm_data.sh"
tiny_corpus "$tmp/corpus" 300
# No dropout: the ranks' dropout streams differ from one process's by design (seed + rank).
common=(--corpus "$tmp/corpus" --context 16 --batch 4 --steps 4 --lr 3e-3 --pe rope --set vocab_size=300
        --set layers=1 --set channels=32 --set heads=2 --set dropout=0 --set warmup=1 --set log_every=1
        --set eval_every=4 --set valid_tokens=64 --tf32 0)
losses() { grep -o '"loss":[^,}]*' "$1/metrics.jsonl" | cut -d: -f2 | tr '\n' ' '; }
agree() {
  python3 - "$1" "$2" <<'PY'
import sys
a, b = [float(x) for x in sys.argv[1].split()], [float(x) for x in sys.argv[2].split()]
assert len(a) == len(b) == 4, (a, b)
for x, y in zip(a, b):
    assert abs(x - y) <= 1e-5 * abs(x), f"losses differ beyond 1e-5: {a} vs {b}"
PY
}

"$apps/train_lm_emu" "${common[@]}" --device cpu --out "$tmp/cpu" > /dev/null
echo "1 CPU process:        $(losses "$tmp/cpu")"
variants=("" "--set zero1=true" "--set accumulation=2" "--set zero1=true --set accumulation=2")
for i in "${!variants[@]}"; do
  # shellcheck disable=SC2086  # the variant is a list of options
  "$mpiexec" --allow-run-as-root --oversubscribe -np 2 "$apps/train_lm_emu" "${common[@]}" --device cuda \
    ${variants[$i]} --out "$tmp/cuda_$i" > "$tmp/cuda_$i.log"
  grep -q '^gradients all-reduced over NCCL on 2 ranks$' "$tmp/cuda_$i.log" ||
    { echo "FAIL: no NCCL line (${variants[$i]})"; cat "$tmp/cuda_$i.log"; exit 1; }
  echo "2 emulated GPUs ${variants[$i]:-(plain)}: $(losses "$tmp/cuda_$i")"
  agree "$(losses "$tmp/cpu")" "$(losses "$tmp/cuda_$i")" || { echo "FAIL: ${variants[$i]} differs"; exit 1; }
done
echo "lm dist emu test passed"
