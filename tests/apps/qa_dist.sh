#!/usr/bin/env bash
# finetune_qa as a 2-rank data-parallel job (mpirun) against 1 process on the same global batch:
# the same logged losses and final parameters to 1e-6 relative (f32; answers of different lengths
# on the two ranks), only rank 0 prints and writes files, an interrupted 2-rank SeqPE run resumes
# exactly, and its checkpoint refuses a 1-process resume.
# Usage: qa_dist.sh BUILD_APPS_DIR MPIEXEC
set -euo pipefail
apps="$1"
mpiexec="$2"
export OMP_NUM_THREADS=1
tmp="$(mktemp -d)"; [ -n "${KEEP:-}" ] && echo "work dir $tmp"
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
mpirun_2() { "$mpiexec" --allow-run-as-root --oversubscribe "$@"; }

source "$(dirname "$0")/qa_data.sh"
qa_corpus "$tmp/corpus"
# 4 steps of 4 wrap into the second epoch inside a batch; every third answer is longer, so the
# ranks score different numbers of answer tokens.
squad "$tmp/train.json" 0 14 1 3
squad "$tmp/valid.json" 40 4 1

lm=(--corpus "$tmp/corpus" --context 64 --batch 4 --steps 2 --lr 3e-3 --set vocab_size=300 --set layers=1
    --set channels=32 --set heads=2 --set warmup=1 --set log_every=2 --set eval_every=2 --set valid_tokens=64
    --set seqpe_max_position=1000)
"$apps/train_lm" "${lm[@]}" --pe rope --out "$tmp/lm_rope" > /dev/null
"$apps/train_lm" "${lm[@]}" --pe seqpe --out "$tmp/lm_seqpe" > /dev/null

# No dropout: the ranks' dropout streams differ from one process's by design (seed + rank).
qa=(--train "$tmp/train.json" --valid "$tmp/valid.json" --steps 4 --batch 4 --lr 3e-3 --set warmup=1
    --set log_every=1 --set eval_every=4 --set dropout=0)
rope=("${qa[@]}" --init "$tmp/lm_rope/best.ckpt.safetensors")
"$apps/finetune_qa" "${rope[@]}" --out "$tmp/one" > "$tmp/one.log"
# MPMD launch: rank 1 is given another --out, which it must never create.
mpirun_2 -np 1 "$apps/finetune_qa" "${rope[@]}" --out "$tmp/two" : \
         -np 1 "$apps/finetune_qa" "${rope[@]}" --out "$tmp/rank1" > "$tmp/two.log"
[ ! -e "$tmp/rank1" ] || { echo "FAIL: rank 1 wrote $(ls -R "$tmp/rank1")"; exit 1; }
[ "$(grep -c '^step ' "$tmp/two.log")" -eq 4 ] || { echo "FAIL: expected 4 step lines (rank 0 only)"; cat "$tmp/two.log"; exit 1; }
python3 "$(dirname "$0")/compare_runs.py" "$tmp/one" "$tmp/two" 4

# SeqPE with dropout on 2 ranks (per-rank dropout and samplers) interrupted and resumed gives the
# uninterrupted loss curve; the 2-rank checkpoint refuses a 1-process resume.
seqpe=("${qa[@]}" --init "$tmp/lm_seqpe/best.ckpt.safetensors" --set dropout=0.1 --set eval_every=2)
losses() { grep -o '"loss":[^,]*,"lr":[^,]*,"step":[0-9]*' "$1/metrics.jsonl"; }
mpirun_2 -np 2 "$apps/finetune_qa" "${seqpe[@]}" --out "$tmp/full" > /dev/null
mpirun_2 -np 2 "$apps/finetune_qa" "${seqpe[@]}" --out "$tmp/resumed" --set stop_after=2 > /dev/null
mpirun_2 -np 2 "$apps/finetune_qa" --resume "$tmp/resumed/last.ckpt.safetensors" --set stop_after=0 > /dev/null
if [ "$(losses "$tmp/full")" != "$(losses "$tmp/resumed")" ]; then
  echo "FAIL: the resumed 2-rank loss curve differs"; diff <(losses "$tmp/full") <(losses "$tmp/resumed"); exit 1
fi
[ "$(losses "$tmp/full" | wc -l)" -eq 4 ] || { echo "FAIL: expected 4 logged steps"; exit 1; }
if "$apps/finetune_qa" --resume "$tmp/resumed/last.ckpt.safetensors" > /dev/null 2> "$tmp/world.log"; then
  echo "FAIL: a 2-rank checkpoint resumed in 1 process"; exit 1
fi
grep -q 'resume it with 2 ranks' "$tmp/world.log" || { echo "FAIL: no world-size message"; cat "$tmp/world.log"; exit 1; }
echo "qa dist test passed"
