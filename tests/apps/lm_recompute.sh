#!/usr/bin/env bash
# --recompute in train_lm: a tiny SeqPE GPT (attn_scalar, 2 layers, dropout 0.1 everywhere) trained
# 4 steps with --recompute none, gelu and block logs the same losses bit for bit (the recomputed
# activations are the kept ones; block replays its dropout draws), and run.json records the mode.
# Usage: lm_recompute.sh BUILD_APPS_DIR
set -euo pipefail
apps="$1"
export OMP_NUM_THREADS=1
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

source "$(dirname "$0")/lm_data.sh"
tiny_corpus "$tmp/corpus" 200
tiny_seqpe_run_options "$tmp/corpus" 2

for mode in none gelu block; do
  "$apps/train_lm" "${tiny_seqpe_run[@]}" --recompute $mode --out "$tmp/$mode" > "$tmp/$mode.log"
  python3 - "$tmp/$mode/run.json" "$mode" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
config = run.get("config", run)
assert config["recompute"] == sys.argv[2], f"{sys.argv[1]}: recompute is {config['recompute']}, not {sys.argv[2]}"
PY
done
none="$(logged_losses "$tmp/none")"
echo "none:  $none"
[ "$(echo "$none" | wc -w)" -eq 4 ] || { echo "FAIL: expected 4 losses, got '$none'"; exit 1; }
for mode in gelu block; do
  got="$(logged_losses "$tmp/$mode")"
  echo "$mode: $got"
  [ "$got" = "$none" ] || { echo "FAIL: --recompute $mode changed the losses"; exit 1; }
done
if "$apps/train_lm" "${tiny_seqpe_run[@]}" --recompute all --out "$tmp/bad" > "$tmp/bad.log" 2>&1; then
  echo "FAIL: --recompute all was accepted"; exit 1
fi
grep -q "expected none, gelu or block" "$tmp/bad.log" || { echo "FAIL: no error naming the values"; cat "$tmp/bad.log"; exit 1; }
echo "ok"
