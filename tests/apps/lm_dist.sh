#!/usr/bin/env bash
# train_lm as a 2-rank data-parallel job (mpirun) against 1 process on the same global batch: the
# same logged losses and final parameters to 1e-6 relative (f32), only rank 0 prints and writes
# files, ZeRO-1 (with and without accumulation) gives the same model and resumes exactly, an
# interrupted 2-rank SeqPE run resumes exactly, ranks with different run configs or devices are
# refused naming the field, and a rank that fails ends the whole job quickly with its message
# instead of hanging.
# Usage: lm_dist.sh BUILD_APPS_DIR MPIEXEC
set -euo pipefail
apps="$1"
mpiexec="$2"
export OMP_NUM_THREADS=1
tmp="$(mktemp -d)"; [ -n "${KEEP:-}" ] && echo "work dir $tmp"
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
mpirun_2() { "$mpiexec" --allow-run-as-root --oversubscribe "$@"; }

source "$(dirname "$0")/lm_data.sh"
tiny_corpus "$tmp/corpus" 300
# No dropout: the ranks' dropout streams differ from one process's by design (seed + rank).
common=(--corpus "$tmp/corpus" --context 16 --batch 4 --steps 4 --lr 3e-3 --pe rope --set vocab_size=300
        --set layers=1 --set channels=32 --set heads=2 --set dropout=0 --set warmup=1 --set log_every=1
        --set eval_every=4 --set valid_tokens=64)

"$apps/train_lm" "${common[@]}" --out "$tmp/one" > "$tmp/one.log"
# MPMD launch: rank 1 is given another --out, which it must never create.
mpirun_2 -np 1 "$apps/train_lm" "${common[@]}" --out "$tmp/two" : \
         -np 1 "$apps/train_lm" "${common[@]}" --out "$tmp/rank1" > "$tmp/two.log"
[ ! -e "$tmp/rank1" ] || { echo "FAIL: rank 1 wrote $(ls -R "$tmp/rank1")"; exit 1; }
[ "$(grep -c '^step ' "$tmp/two.log")" -eq 4 ] || { echo "FAIL: expected 4 step lines (rank 0 only)"; cat "$tmp/two.log"; exit 1; }

python3 "$(dirname "$0")/compare_runs.py" "$tmp/one" "$tmp/two" 4

# ZeRO-1 (optimizer state sharded over the 2 ranks), alone and with 2 accumulated micro-batches, gives
# the 1-process model; interrupted with step checkpoints, it resumes (each rank its own shard) the
# exact curve.
mpirun_2 -np 2 "$apps/train_lm" "${common[@]}" --out "$tmp/zero1" --set zero1=true > /dev/null
python3 "$(dirname "$0")/compare_runs.py" "$tmp/one" "$tmp/zero1" 4 model
mpirun_2 -np 2 "$apps/train_lm" "${common[@]}" --out "$tmp/zero1_accumulated" --set zero1=true \
  --set accumulation=2 > /dev/null
python3 "$(dirname "$0")/compare_runs.py" "$tmp/one" "$tmp/zero1_accumulated" 4 model
zero1_losses() { grep -o '"loss":[^,]*,"lr":[^,]*,"step":[0-9]*' "$1/metrics.jsonl"; }
mpirun_2 -np 2 "$apps/train_lm" "${common[@]}" --out "$tmp/zero1_resumed" --set zero1=true --set stop_after=2 \
  --set checkpoint_every=1 --set keep_checkpoints=1 > /dev/null
[ -e "$tmp/zero1_resumed/step_2.rank1.optim.safetensors" ] && [ ! -e "$tmp/zero1_resumed/step_1.rank1.optim.safetensors" ] ||
  { echo "FAIL: ZeRO-1 shards of step checkpoints: $(ls "$tmp/zero1_resumed")"; exit 1; }
mpirun_2 -np 2 "$apps/train_lm" --resume latest --out "$tmp/zero1_resumed" --set stop_after=0 > /dev/null
[ "$(zero1_losses "$tmp/zero1")" = "$(zero1_losses "$tmp/zero1_resumed")" ] ||
  { echo "FAIL: the resumed ZeRO-1 curve differs"; diff <(zero1_losses "$tmp/zero1") <(zero1_losses "$tmp/zero1_resumed"); exit 1; }
if mpirun_2 -np 2 "$apps/train_lm" --resume latest --out "$tmp/zero1_resumed" --set zero1=false > "$tmp/zero1.log" 2>&1; then
  echo "FAIL: a ZeRO-1 checkpoint resumed without zero1"; exit 1
fi
grep -q "resume it with zero1" "$tmp/zero1.log" || { echo "FAIL: no zero1 message"; cat "$tmp/zero1.log"; exit 1; }

# SeqPE with dropout on 2 ranks (per-rank dropout and samplers) interrupted and resumed gives the
# uninterrupted loss curve; the 2-rank checkpoint refuses a 1-process resume.
# A fresh copy of the corpus: rank 0 trains and caches its tokenizer while rank 1 waits.
mkdir "$tmp/corpus2" && cp "$tmp/corpus/"*.txt "$tmp/corpus2/"
seqpe=("${common[@]}" --corpus "$tmp/corpus2" --pe seqpe --steps 6 --set dropout=0.1 --set warmup=2
       --set eval_every=3 --set seqpe_max_position=1000)
losses() { grep -o '"loss":[^,]*,"lr":[^,]*,"step":[0-9]*' "$1/metrics.jsonl"; }
mpirun_2 -np 2 "$apps/train_lm" "${seqpe[@]}" --out "$tmp/full" > /dev/null
mpirun_2 -np 2 "$apps/train_lm" "${seqpe[@]}" --out "$tmp/resumed" --set stop_after=3 > /dev/null
mpirun_2 -np 2 "$apps/train_lm" --resume "$tmp/resumed/last.ckpt.safetensors" --set stop_after=0 > /dev/null
if [ "$(losses "$tmp/full")" != "$(losses "$tmp/resumed")" ]; then
  echo "FAIL: the resumed 2-rank loss curve differs"; diff <(losses "$tmp/full") <(losses "$tmp/resumed"); exit 1
fi
[ "$(losses "$tmp/full" | wc -l)" -eq 6 ] || { echo "FAIL: expected 6 logged steps"; exit 1; }
if "$apps/train_lm" --resume "$tmp/resumed/last.ckpt.safetensors" 2> "$tmp/world.log"; then
  echo "FAIL: a 2-rank checkpoint resumed in 1 process"; exit 1
fi
grep -q 'resume it with 2 ranks' "$tmp/world.log" || { echo "FAIL: no world-size message"; cat "$tmp/world.log"; exit 1; }

# Ranks launched with different run configs (rank 1 given another learning rate) are refused at the
# start, every rank naming the field, instead of training an inconsistent model.
set +e
timeout 60 "$mpiexec" --allow-run-as-root --oversubscribe \
    -np 1 "$apps/train_lm" "${common[@]}" --out "$tmp/disagree" : \
    -np 1 "$apps/train_lm" "${common[@]}" --out "$tmp/disagree" --set lr=1e-2 > "$tmp/disagree.log" 2>&1
status=$?
set -e
if [ "$status" -eq 0 ] || [ "$status" -eq 124 ]; then echo "FAIL: disagreeing ranks gave status $status"; exit 1; fi
grep -q 'ranks disagree on the run config: .*/lr' "$tmp/disagree.log" ||
  { echo "FAIL: no message naming the differing field"; cat "$tmp/disagree.log"; exit 1; }
[ ! -e "$tmp/disagree/metrics.jsonl" ] || { echo "FAIL: disagreeing ranks trained"; exit 1; }

# Ranks launched on different devices (rank 1 given --device cuda) are refused before the GPU choice,
# a collective the CPU rank would never enter (it hung there before this check).
set +e
timeout 60 "$mpiexec" --allow-run-as-root --oversubscribe \
    -np 1 "$apps/train_lm" "${common[@]}" --out "$tmp/devices" : \
    -np 1 "$apps/train_lm" "${common[@]}" --out "$tmp/devices" --device cuda > "$tmp/devices.log" 2>&1
status=$?
set -e
if [ "$status" -eq 0 ] || [ "$status" -eq 124 ]; then echo "FAIL: ranks on different devices gave status $status"; exit 1; fi
grep -q 'ranks disagree on the device settings: .*--device' "$tmp/devices.log" ||
  { echo "FAIL: no message naming --device"; cat "$tmp/devices.log"; exit 1; }

# A failing rank (rank 1 cannot read its corpus) while rank 0 waits for it in a collective: the
# job must end with the message and a failure status, not hang (the timeout would give 124).
set +e
timeout 60 "$mpiexec" --allow-run-as-root --oversubscribe \
    -np 1 "$apps/train_lm" "${common[@]}" --out "$tmp/fail" : \
    -np 1 "$apps/train_lm" "${common[@]}" --out "$tmp/fail" --corpus "$tmp/missing" > "$tmp/fail.log" 2>&1
status=$?
set -e
cat "$tmp/fail.log" | head -20
if [ "$status" -eq 0 ] || [ "$status" -eq 124 ]; then echo "FAIL: a failed rank gave status $status"; exit 1; fi
grep -q 'train_lm: rank 1 of 2 failed: ' "$tmp/fail.log" || { echo "FAIL: no message naming the failed rank"; exit 1; }
echo "lm dist test passed"
