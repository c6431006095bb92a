#!/usr/bin/env bash
# scripts/gpu_check.sh on a machine without a GPU (nvidia-smi missing, or listing no GPU): it says
# so, exits 0, and builds, runs and writes nothing (no build directory, no report).
# Usage: gpu_check_without_gpu.sh SOURCE_DIR
set -euo pipefail
source_dir="$1"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# An nvidia-smi that finds no GPU, as on a machine with a driver but no device.
printf '#!/bin/sh\necho "No devices were found"\nexit 6\n' >"$tmp/nvidia-smi-no-gpu"
chmod +x "$tmp/nvidia-smi-no-gpu"

for smi in "$tmp/absent-nvidia-smi" "$tmp/nvidia-smi-no-gpu"; do
  status=0
  BUILD_DIR="$tmp/build" REPORT="$tmp/report.md" NVIDIA_SMI="$smi" \
    bash "$source_dir/scripts/gpu_check.sh" >"$tmp/out.log" 2>&1 || status=$?
  [ "$status" -eq 0 ] || { echo "FAIL: exit status $status with $smi"; cat "$tmp/out.log"; exit 1; }
  grep -q 'no usable NVIDIA GPU' "$tmp/out.log" || { echo "FAIL: no 'no usable NVIDIA GPU' message"; cat "$tmp/out.log"; exit 1; }
  [ ! -e "$tmp/build" ] || { echo "FAIL: it created the build directory"; exit 1; }
  [ ! -e "$tmp/report.md" ] || { echo "FAIL: it wrote a report"; exit 1; }
  [ "$(wc -l <"$tmp/out.log")" -eq 1 ] || { echo "FAIL: it ran more than the check"; cat "$tmp/out.log"; exit 1; }
done
echo "gpu_check without a GPU: says so, exits 0, runs nothing"
