#!/usr/bin/env bash
# The trainer's guards, through train_lm on a tiny corpus (each failed before the trainer had it):
#   - log_every / eval_every / accumulation of 0 are refused by name (they divided by zero);
#   - a diverging run (huge learning rate) stops with an error naming the step and exit 1, and
#     skip_nonfinite skips such steps until too many come in a row;
#   - a new run over a folder holding checkpoints is refused before it writes anything (run.json
#     unchanged); metrics.jsonl that cannot be opened, and (not as root) a read-only folder, fail
#     at start, before any step;
#   - temporaries of killed writers (*.tmp.<pid of no process>) are removed at start;
#   - accumulation=2 equals one batch of the same rows; a batch it does not split is refused;
#   - a valid split too short for one validation sequence is refused at start;
#   - "step_<N>" checkpoints every checkpoint_every steps, the keep_checkpoints newest kept;
#     --resume latest takes the newest complete checkpoint; a resume from an older checkpoint
#     continues the loss curve exactly and metrics.jsonl does not repeat a step.
# Usage: trainer_checks.sh BUILD_APPS_DIR
set -euo pipefail
apps="$1"
export OMP_NUM_THREADS=1
tmp="$(mktemp -d)"
trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' EXIT

source "$(dirname "$0")/lm_data.sh"
tiny_corpus "$tmp/corpus" 200
common=(--corpus "$tmp/corpus" --context 8 --batch 2 --steps 6 --lr 3e-3 --set vocab_size=280 --set layers=1
        --set channels=16 --set heads=2 --set warmup=1 --set log_every=1 --set eval_every=3 --set valid_tokens=32)
# Runs train_lm expecting failure with a message matching $1.
fails_with() {
  local pattern="$1"; shift
  if "$apps/train_lm" "$@" > "$tmp/out.log" 2>&1; then echo "FAIL: train_lm $* succeeded"; exit 1; fi
  grep -q -- "$pattern" "$tmp/out.log" || { echo "FAIL: train_lm $*: expected '$pattern', got:"; cat "$tmp/out.log"; exit 1; }
}

fails_with "log_every must be positive" "${common[@]}" --out "$tmp/a" --set log_every=0
fails_with "eval_every must be positive" "${common[@]}" --out "$tmp/a" --set eval_every=0
fails_with "accumulation must be positive" "${common[@]}" --out "$tmp/a" --set accumulation=0

fails_with "step [0-9]*: the .* is not finite" "${common[@]}" --out "$tmp/diverged" --lr 1e30
grep -q '"step"' "$tmp/diverged/metrics.jsonl" 2>/dev/null && grep -q null "$tmp/diverged/metrics.jsonl" &&
  { echo "FAIL: a non-finite loss was logged"; exit 1; }
fails_with "10 steps in a row were not finite" "${common[@]}" --out "$tmp/skipped" --lr 1e30 --set skip_nonfinite=true
grep -q "skipped" "$tmp/out.log" || { echo "FAIL: no skipped step reported"; exit 1; }

# A full run with periodic checkpoints; stale temporaries are removed at its start.
mkdir -p "$tmp/run"
touch "$tmp/run/last.ckpt.safetensors.tmp.99999999"
"$apps/train_lm" "${common[@]}" --out "$tmp/run" --set checkpoint_every=2 --set keep_checkpoints=2 > "$tmp/run.log"
[ ! -e "$tmp/run/last.ckpt.safetensors.tmp.99999999" ] || { echo "FAIL: stale temporary kept"; exit 1; }
for f in step_4 step_6; do [ -e "$tmp/run/$f.ckpt.safetensors" ] || { echo "FAIL: no $f checkpoint"; exit 1; }; done
[ ! -e "$tmp/run/step_2.ckpt.safetensors" ] || { echo "FAIL: step_2 not pruned (keep_checkpoints=2)"; exit 1; }

# A new run over it is refused before run.json changes.
cp "$tmp/run/run.json" "$tmp/run.json.before"
fails_with "already holds checkpoints" "${common[@]}" --out "$tmp/run" --set layers=2
cmp -s "$tmp/run.json.before" "$tmp/run/run.json" || { echo "FAIL: run.json overwritten by a refused run"; exit 1; }

# --resume latest: with the model.json of steps 6 missing (as if killed in between), step 4 is the
# newest complete checkpoint; the curve from there equals the uninterrupted one, each step once.
steps() { python3 -c 'import json,sys; print(" ".join(str(json.loads(l)["step"]) for l in open(sys.argv[1]) if "\"loss\"" in l))' "$1"; }
losses() { grep -o '"loss":[^,]*,"lr":[^,]*,"step":[0-9]*' "$1/metrics.jsonl"; }
expected="$(losses "$tmp/run")"
rm "$tmp/run/last.model.json" "$tmp/run/step_6.model.json"
"$apps/train_lm" --resume latest --out "$tmp/run" > "$tmp/resume.log"
grep -q "resumed from $tmp/run/step_4.ckpt.safetensors at step 4" "$tmp/resume.log" ||
  { echo "FAIL: --resume latest did not take step_4"; cat "$tmp/resume.log"; exit 1; }
[ "$(steps "$tmp/run/metrics.jsonl")" = "1 2 3 4 5 6" ] ||
  { echo "FAIL: metrics.jsonl steps after the resume: $(steps "$tmp/run/metrics.jsonl")"; exit 1; }
[ "$(losses "$tmp/run")" = "$expected" ] || { echo "FAIL: the resumed curve differs"; exit 1; }

# Gradient accumulation: 2 micro-batches of 2 rows give the step of one batch of 4 (the same blocks
# in the same order; no dropout), to f32 rounding.
"$apps/train_lm" "${common[@]}" --batch 4 --set dropout=0 --out "$tmp/whole" > /dev/null
"$apps/train_lm" "${common[@]}" --batch 4 --set dropout=0 --set accumulation=2 --out "$tmp/accumulated" > /dev/null
python3 - "$tmp/whole/metrics.jsonl" "$tmp/accumulated/metrics.jsonl" <<'PY'
import json, sys
a, b = ([json.loads(l)["loss"] for l in open(p) if '"loss"' in l] for p in sys.argv[1:])
assert len(a) == len(b) == 6, (a, b)
assert all(abs(x - y) <= 1e-5 * abs(x) for x, y in zip(a, b)), f"accumulated losses differ: {a} vs {b}"
PY
fails_with "does not split into 3 micro-batches" "${common[@]}" --batch 4 --set accumulation=3 --out "$tmp/a"

# Output that cannot be written fails at start.
mkdir -p "$tmp/bad_metrics/metrics.jsonl"
fails_with "cannot open .*metrics.jsonl" "${common[@]}" --out "$tmp/bad_metrics"
grep -q "^step" "$tmp/out.log" && { echo "FAIL: trained before noticing the metrics file"; exit 1; }
if [ "$(id -u)" != 0 ]; then  # root writes into read-only folders
  mkdir -p "$tmp/read_only" && chmod a-w "$tmp/read_only"
  fails_with "read_only" "${common[@]}" --out "$tmp/read_only"
  grep -q "^step" "$tmp/out.log" && { echo "FAIL: trained before noticing the read-only folder"; exit 1; }
fi
# A valid split with no validation sequence (empty, or fewer than context + 1 tokens) is refused
# naming the corpus and the split, before any step (it gave perplexity -nan after training).
tiny_corpus "$tmp/empty_valid" 200
: > "$tmp/empty_valid/valid.txt"
fails_with "corpus .*empty_valid: the valid split (.*valid.*) holds 0 tokens" "${common[@]}" --corpus "$tmp/empty_valid" \
  --out "$tmp/b"
grep -q "^step" "$tmp/out.log" && { echo "FAIL: trained before noticing the empty valid split"; exit 1; }
tiny_corpus "$tmp/short_valid" 200
echo "In" > "$tmp/short_valid/valid.txt"
fails_with "short_valid: the valid split .* fewer than one validation sequence of 9" "${common[@]}" \
  --corpus "$tmp/short_valid" --out "$tmp/b"
echo "trainer checks passed"
