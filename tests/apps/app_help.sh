#!/usr/bin/env bash
# Every app's command line (CLI11, apps/cli_options.h):
#   - `--help` exits 0 and lists the app's options (one of its own named below) and an example;
#   - a bad value is refused naming the option (`--steps 6.9` is not truncated), an unknown option
#     and a missing required one are refused, with exit status 1 and the app's name said once.
# Usage: app_help.sh BUILD_APPS_DIR
set -euo pipefail
apps="$1"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# app and one option its --help must list
declare -A own_option=(
  [train_lm]=--steps [eval_lm]=--lengths [sample_lm]=--max-new-tokens [train_vit]=--epochs [eval_vit]=--sizes
  [finetune_qa]=--init [eval_qa]=--max-examples [build_qa]=--eval-lengths [bench]=--precision [bench_seqpe]=steps
  [bench_allreduce]=max_mib [demo]=steps [gpu_step_model]=--summary [bench_gpu]=what [plot_training]=--out
  [export_weights]=--dtype
)
for app in "${!own_option[@]}"; do
  if [ ! -x "$apps/$app" ]; then
    [ "$app" = bench_gpu ] && continue  # built only with the CUDA backend
    echo "FAIL: $apps/$app is missing"; exit 1
  fi
  "$apps/$app" --help > "$tmp/help.txt" 2>&1 || { echo "FAIL: $app --help exited $?"; cat "$tmp/help.txt"; exit 1; }
  grep -q -- "^  ${own_option[$app]} " "$tmp/help.txt" ||
    { echo "FAIL: $app --help does not list ${own_option[$app]}:"; cat "$tmp/help.txt"; exit 1; }
  grep -q "$app " <<< "$(grep -A1 '^Example:' "$tmp/help.txt")" ||
    { echo "FAIL: $app --help has no example command:"; cat "$tmp/help.txt"; exit 1; }
done

# Runs an app expecting exit status 1 and one line "<app>: <message matching $2>".
refused() {
  local app="$1" pattern="$2" status=0; shift 2
  "$apps/$app" "$@" > "$tmp/out.log" 2>&1 || status=$?
  [ "$status" = 1 ] || { echo "FAIL: $app $* exited $status, expected 1"; cat "$tmp/out.log"; exit 1; }
  grep -q -- "^$app: $pattern" "$tmp/out.log" ||
    { echo "FAIL: $app $*: expected '$app: $pattern', got:"; cat "$tmp/out.log"; exit 1; }
  grep -q -- "^$app: $app:" "$tmp/out.log" && { echo "FAIL: $app $*: the app's name twice"; exit 1; }
  return 0
}
refused train_lm "--steps expects an integer, got '6.9'" --steps 6.9
refused train_lm "--tf32 expects 0 or 1, got '2'" --tf32 2
refused train_lm "unknown option --stpes" --stpes 5
refused eval_lm "unexpected argument .extra." --checkpoint c extra
refused train_lm "--steps: 1 required INT missing" --steps
refused train_vit "--width expects an integer, got '33.9'" --width 33.9
refused finetune_qa "--batch expects an integer, got 'x'" --batch x
refused eval_lm "--checkpoint is required"
refused eval_lm "--lengths values must be >= 1, got 0" --checkpoint c.ckpt.safetensors --lengths 128,0
refused sample_lm "--max-new-tokens must be positive, got 0" --checkpoint c.ckpt.safetensors --max-new-tokens 0
refused sample_lm "--prompt.* excludes --prompt" --checkpoint c --prompt a --prompt-file b
refused export_weights "--dtype f16: expected bf16 or f32" --checkpoint c.ckpt.safetensors --dtype f16
refused export_weights "--out w.safetensors: expected a \*.weights.safetensors file" --checkpoint c.ckpt.safetensors --out w.safetensors
refused eval_vit "--batch must be positive, got 0" --run r --batch 0
refused eval_qa "--max-new must be positive, got 0" --checkpoint c --data 'd.{L}.json' --lengths 8 --max-new 0
refused build_qa "--out is required"
refused bench "steps must be positive, got 0" gemm 0
refused bench "unknown benchmark 'gem'" gem
refused bench_seqpe "steps expects an integer, got '2x'" 2x
refused demo "steps expects an integer, got '1e3'" 1e3
refused gpu_step_model "--batch must be positive, got 0" --batch 0
refused bench_allreduce "max_mib must be positive, got 0" 0
echo "app help and option checks passed"
