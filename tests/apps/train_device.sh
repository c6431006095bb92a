#!/usr/bin/env bash
# train_vit and finetune_qa with --device cuda on the kernel emulator (their *_emu builds) against
# --device cpu, SeqPE and one other encoding each: the loss of each of 3 steps agrees to 1e-5
# relative (as tests/apps/lm_device.sh for train_lm), and a SeqPE run interrupted on emulated CUDA
# and resumed with --resume latest continues the loss curve exactly.
# Usage: train_device.sh BUILD_APPS_DIR
set -euo pipefail
apps="$1"
export OMP_NUM_THREADS=1
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

losses() { python3 -c 'import json,sys; print(" ".join(repr(json.loads(l)["loss"]) for l in open(sys.argv[1]) if "\"loss\"" in l))' "$1/metrics.jsonl"; }
agree() {
  python3 - "$1" "$2" <<'PY'
import sys
a, b = [float(x) for x in sys.argv[1].split()], [float(x) for x in sys.argv[2].split()]
assert len(a) == len(b) == 3, (a, b)
for x, y in zip(a, b):
    assert abs(x - y) <= 1e-5 * abs(x), f"losses differ beyond 1e-5: {a} vs {b}"
PY
}
# Runs "$@" on both devices into $tmp/<name>_{cpu,cuda}, compares, then interrupts and resumes on CUDA.
check() {
  local name="$1"; shift
  "$@" --device cpu --out "$tmp/${name}_cpu" > /dev/null
  "$@" --device cuda --tf32 0 --out "$tmp/${name}_cuda" > "$tmp/$name.log"
  grep -q 'device cuda:0 (kernel emulator)' "$tmp/$name.log" || { echo "FAIL: $name did not run on CUDA"; exit 1; }
  echo "$name cpu:  $(losses "$tmp/${name}_cpu")"
  echo "$name cuda: $(losses "$tmp/${name}_cuda")"
  agree "$(losses "$tmp/${name}_cpu")" "$(losses "$tmp/${name}_cuda")" || { echo "FAIL: $name on CUDA differs"; exit 1; }
}
# $2 is the option that ends a run early: train_vit's --stop-after N or finetune_qa's --set stop_after=N.
resumes() {
  local name="$1" stop="$2"; shift 2
  local at2=("$stop" 2) at0=("$stop" 0)
  [ "$stop" = --set ] && { at2=(--set stop_after=2); at0=(--set stop_after=0); }
  "$@" --device cuda --tf32 0 --out "$tmp/${name}_resumed" "${at2[@]}" > /dev/null
  "$@" --device cuda --tf32 0 --out "$tmp/${name}_resumed" "${at0[@]}" --resume latest > /dev/null
  [ "$(losses "$tmp/${name}_cuda")" = "$(losses "$tmp/${name}_resumed")" ] ||
    { echo "FAIL: the resumed $name curve differs"; losses "$tmp/${name}_resumed"; exit 1; }
}

vit=("$apps/train_vit_emu" --synthetic 32 --steps 3 --batch 8 --width 16 --depth 1 --heads 2 --log-every 1
     --eval-every 3)
check vit_rope2d "${vit[@]}" --pe rope2d
check vit_seqpe "${vit[@]}" --pe seqpe
resumes vit_seqpe --stop-after "${vit[@]}" --pe seqpe

source "$(dirname "$0")/qa_data.sh"
qa_corpus "$tmp/corpus"
squad "$tmp/train.json" 0 16 1
squad "$tmp/valid.json" 16 4 1
for pe in rope seqpe; do
  "$apps/train_lm_emu" --corpus "$tmp/corpus" --context 48 --batch 2 --steps 2 --set vocab_size=300 --set layers=1 \
    --set channels=16 --set heads=2 --set warmup=1 --set eval_every=2 --set valid_tokens=48 \
    --set seqpe_max_position=100 --set seqpe_layers=1 --pe $pe --out "$tmp/lm_$pe" > /dev/null
  qa=("$apps/finetune_qa_emu" --init "$tmp/lm_$pe/best.ckpt.safetensors" --train "$tmp/train.json"
      --valid "$tmp/valid.json" --steps 3 --batch 2 --lr 3e-3 --set warmup=1 --set log_every=1 --set eval_every=3)
  check qa_$pe "${qa[@]}"
done
resumes qa_seqpe --set "${qa[@]}"
echo "train device test passed"
