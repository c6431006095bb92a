#!/usr/bin/env bash
# Runs the engine's CPU benchmark and the PyTorch peer (../shared/bench/torch_gpt_step.py, Debian's
# python3-torch) on the same threads, for docs/benchmarks.md. Usage: scripts/bench_cpu.sh [threads]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build build/release --target bench >/dev/null
OMP_NUM_THREADS=$threads build/release/apps/bench all
peer=../shared/bench/torch_gpt_step.py
if [ -f "$peer" ] && /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo
  /usr/bin/python3 "$peer" --threads "$threads"
else
  echo "PyTorch peer skipped: needs $peer and python3-torch (apt-get install python3-torch)"
fi
