#!/usr/bin/env bash
# Runs the engine's CPU benchmark and the PyTorch peer (../shared/bench/torch_gpt_step.py, Debian's
# python3-torch) on the same threads and prints the GPT step ratio, for docs/benchmarks.md.
# Usage: scripts/bench_cpu.sh [threads] [what: all|gpt] [GPT steps] [rounds]
#
# Each round runs ours right before each peer run, and the ratio quoted is the median of the rounds'
# ratios: on a shared machine whose speed drifts by tens of percent within minutes, one run of
# each, minutes apart, compares two different machines.
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
rounds=${4:-3}
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build build/release --target bench >/dev/null
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
# The whole benchmark once (what = all prints more than the GPT step), then only the GPT step.
run_ours() { OMP_NUM_THREADS=$threads build/release/apps/bench "$1" "$steps" | tee >(cat >&2); }
peer=../shared/bench/torch_gpt_step.py
if ! [ -f "$peer" ] || ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  run_ours "$what" > /dev/null
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
# The peer's median step in ms with OPENBLAS_CORETYPE=$1 (empty: unset).
run_peer() {
  local prefix=(env -u OPENBLAS_CORETYPE)
  [ -n "$1" ] && prefix=(env OPENBLAS_CORETYPE="$1")
  median_ms "$("${prefix[@]}" OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" /usr/bin/python3 "$peer" \
    --threads "$threads" --steps "$steps" | tee >(cat >&2))"
}

default_core=$(openblas_core env -u OPENBLAS_CORETYPE)
cores=("")  # the peer as the environment gives it
case "$default_core" in
  Prescott|Core2|Penryn|Dunnington|Nehalem|Atom|unknown)  # generic: no AVX kernel chosen
    if grep -qw avx512f /proc/cpuinfo; then cores+=(SkylakeX)
    elif grep -qw avx2 /proc/cpuinfo; then cores+=(Haswell); fi
    [ ${#cores[@]} -gt 1 ] &&
      echo "OpenBLAS picks its generic $default_core kernel for this CPU; the peer also runs with OPENBLAS_CORETYPE=${cores[1]}"
    ;;
esac

declare -A ratios
for round in $(seq "$rounds"); do
  for core in "${cores[@]}"; do
    # Ours right before each peer run: the pair sees the same minute of the machine.
    ours=$(median_ms "$(run_ours "$([ "$round$core" = 1 ] && echo "$what" || echo gpt)")")
    theirs=$(run_peer "$core")
    label=${core:-$default_core}
    ratio=$(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.2f", b / a }')
    ratios[$label]+="$ratio "
    echo "round $round: ours $ours ms, PyTorch $theirs ms (OpenBLAS kernel $label): ${ratio}x"
  done
done
for core in "${cores[@]}"; do
  label=${core:-$default_core}
  median=$(tr ' ' '\n' <<<"${ratios[$label]}" | grep . | sort -n | awk '{r[NR] = $1} END { print r[int((NR + 1) / 2)] }')
  echo "GPT step: ${median}x PyTorch (OpenBLAS kernel $label), median of $rounds rounds: ${ratios[$label]}"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
