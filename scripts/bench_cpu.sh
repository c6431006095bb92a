#!/usr/bin/env bash
# Runs the engine's CPU benchmark and the PyTorch peer (../shared/bench/torch_gpt_step.py, Debian's
# python3-torch) on the same threads, one after the other, and prints the GPT step ratio, for
# docs/benchmarks.md. Usage: scripts/bench_cpu.sh [threads] [what: all|gpt] [GPT steps]
#
# The peer's GEMMs are OpenBLAS's, whose runtime dispatch (0.3.21) falls back to a generic SSE3
# kernel ("Prescott") on CPUs it does not know, such as recent Xeons: 2-3x slower than its AVX-512
# kernel. When that happens the peer also runs with OPENBLAS_CORETYPE naming the kernel for this
# CPU's vector width, and the ratio against that faster peer is the one to quote.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --bench > /dev/null  # the peer needs OpenBLAS behind libblas.so.3
threads=${1:-2}
what=${2:-all}
steps=${3:-10}
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build build/release --target bench >/dev/null
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
ours=$(OMP_NUM_THREADS=$threads build/release/apps/bench "$what" "$steps" | tee >(cat >&2))
peer=../shared/bench/torch_gpt_step.py
if ! [ -f "$peer" ] || ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "PyTorch peer skipped: needs $peer and python3-torch (bash scripts/setup.sh --bench)"
  exit 0
fi

# "median step <ms> ms" of one program's output.
median_ms() { grep -o 'median step [0-9.]*' <<<"$1" | tail -1 | awk '{print $3}'; }
# The OpenBLAS kernel that libblas.so.3 picks, run under the environment prefix "$@".
openblas_core() {
  "$@" /usr/bin/python3 -c "import ctypes; b = ctypes.CDLL('libblas.so.3'); \
b.openblas_get_corename.restype = ctypes.c_char_p; print(b.openblas_get_corename().decode())" 2>/dev/null ||
    echo unknown
}
# Runs the peer with OPENBLAS_CORETYPE=$1 (empty: unset) and prints the ratio of its step to ours.
run_peer() {
  local prefix=(env -u OPENBLAS_CORETYPE)
  [ -n "$1" ] && prefix=(env OPENBLAS_CORETYPE="$1")
  local output
  output=$("${prefix[@]}" OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" /usr/bin/python3 "$peer" \
    --threads "$threads" --steps "$steps" | tee >(cat >&2))
  awk -v a="$(median_ms "$ours")" -v b="$(median_ms "$output")" -v core="$(openblas_core "${prefix[@]}")" \
    'BEGIN { printf "GPT step: ours %.1f ms, PyTorch %.1f ms (OpenBLAS kernel %s): %.2fx PyTorch\n", a, b, core, b / a }'
}

echo
run_peer ""
default_core=$(openblas_core env -u OPENBLAS_CORETYPE)
case "$default_core" in
  Prescott|Core2|Penryn|Dunnington|Nehalem|Atom|unknown)  # generic: no AVX kernel chosen
    if grep -qw avx512f /proc/cpuinfo; then native=SkylakeX
    elif grep -qw avx2 /proc/cpuinfo; then native=Haswell
    else native=""; fi
    if [ -n "$native" ]; then
      echo
      echo "OpenBLAS picked its generic $default_core kernel for this CPU; the peer again with OPENBLAS_CORETYPE=$native:"
      run_peer "$native"
    fi
    ;;
esac
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
