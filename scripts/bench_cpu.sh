#!/usr/bin/env bash
# Runs the engine's CPU benchmark and the PyTorch peer (../shared/bench/torch_gpt_step.py, Debian's
# python3-torch) on the same threads, one after the other, and prints the GPT step ratio, for
# docs/benchmarks.md. Usage: scripts/bench_cpu.sh [threads] [what: all|gpt] [GPT steps]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --bench > /dev/null  # the peer needs OpenBLAS behind libblas.so.3
threads=${1:-2}
what=${2:-all}
steps=${3:-10}
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build build/release --target bench >/dev/null
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
ours=$(OMP_NUM_THREADS=$threads build/release/apps/bench "$what" "$steps" | tee /dev/stderr)
peer=../shared/bench/torch_gpt_step.py
if [ -f "$peer" ] && /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo
  theirs=$(OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads /usr/bin/python3 "$peer" --threads "$threads" --steps "$steps" | tee /dev/stderr)
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  # Both print "median step <ms> ms"; the ratio is PyTorch's step time over ours.
  ours_ms=$(grep -o 'median step [0-9.]*' <<<"$ours" | tail -1 | awk '{print $3}')
  theirs_ms=$(grep -o 'median step [0-9.]*' <<<"$theirs" | tail -1 | awk '{print $3}')
  awk -v a="$ours_ms" -v b="$theirs_ms" 'BEGIN { printf "GPT step: ours %.1f ms, PyTorch %.1f ms: %.2fx PyTorch\n", a, b, b / a }'
else
  echo "PyTorch peer skipped: needs $peer and python3-torch (bash scripts/setup.sh --bench)"
fi
