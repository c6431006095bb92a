#!/usr/bin/env bash
# Runs the engine's CPU benchmark and the PyTorch peer (torch_gpt_step.py, Debian's python3-torch) on
# the same threads, in fp32 and in bf16 (ours: --precision bf16; PyTorch: --bf16, CPU autocast through
# oneDNN, which uses AMX or AVX512-BF16 where the CPU has them), and prints the GPT step ratios, for
# docs/benchmarks.md.
# Usage: scripts/bench_cpu.sh [threads] [what: all|gpt] [GPT steps] [rounds] [model options...]
#   model options, passed to both programs: --layers N --width N --heads N --context N --batch N
#   (default: the benchmark model, 6 layers, width 256, 8 heads, context 256, batch 8, vocab 4096)
# Environment: PEER (default bench/torch_gpt_step.py), BUILD (default build/release: the
# build directory of apps/bench, configured and built here).
#
# Each round runs the four programs one after the other (ours fp32, PyTorch fp32, ours bf16, PyTorch
# bf16), and every ratio quoted is the median of the rounds' ratios: on a shared machine whose speed
# drifts by tens of percent within minutes, one run of each, minutes apart, compares two different
# machines. Our benchmark prints the bf16 kernel that ran (AMX, AVX512-BF16 or fp32 fallback).
#
# The peer's f32 GEMMs are OpenBLAS's, whose runtime dispatch (0.3.21) falls back to a generic SSE3
# kernel ("Prescott") on CPUs it does not know, such as recent Xeons: 2-3x slower than its AVX-512
# kernel. When that happens the peer runs with OPENBLAS_CORETYPE naming the kernel for this CPU's
# vector width instead (the faster peer), and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --bench > /dev/null  # the peer needs OpenBLAS behind libblas.so.3
threads=${1:-2}
what=${2:-all}
steps=${3:-10}
rounds=${4:-3}
model=("${@:5}")
build=${BUILD:-build/release}
peer=${PEER:-bench/torch_gpt_step.py}
if [ "$build" = build/release ]; then
  cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
fi
cmake --build "$build" --target bench >/dev/null
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; bf16 flags: $(grep -ow 'amx_bf16\|avx512_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
# Ours: "$1" = what to run, "$2" = precision; the full output goes to stderr.
run_ours() { OMP_NUM_THREADS=$threads "$build"/apps/bench "$1" "$steps" --precision "$2" "${model[@]}" | tee >(cat >&2); }
if ! [ -f "$peer" ] || ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  run_ours "$what" fp32 > /dev/null
  run_ours gpt bf16 > /dev/null
  echo "PyTorch peer skipped: needs $peer and python3-torch (bash scripts/setup.sh --bench)"
  exit 0
fi
# The peer spells --context as --ctx.
peer_model=("${model[@]/#--context/--ctx}")

# "median step <ms> ms" of one program's output.
median_ms() { grep -o 'median step [0-9.]*' <<<"$1" | tail -1 | awk '{print $3}'; }
# The OpenBLAS kernel that libblas.so.3 picks, run under the environment prefix "$@".
openblas_core() {
  "$@" /usr/bin/python3 -c "import ctypes; b = ctypes.CDLL('libblas.so.3'); \
b.openblas_get_corename.restype = ctypes.c_char_p; print(b.openblas_get_corename().decode())" 2>/dev/null ||
    echo unknown
}
core=""  # OPENBLAS_CORETYPE for the peer; empty: as the environment gives it
default_core=$(openblas_core env -u OPENBLAS_CORETYPE)
case "$default_core" in
  Prescott|Core2|Penryn|Dunnington|Nehalem|Atom|unknown)  # generic: no AVX kernel chosen
    if grep -qw avx512f /proc/cpuinfo; then core=SkylakeX
    elif grep -qw avx2 /proc/cpuinfo; then core=Haswell; fi
    [ -n "$core" ] && echo "OpenBLAS picks its generic $default_core kernel for this CPU; the peer runs with OPENBLAS_CORETYPE=$core"
    ;;
esac
# The peer's median step in ms; "$1": --bf16 or nothing.
run_peer() {
  local prefix=(env -u OPENBLAS_CORETYPE)
  [ -n "$core" ] && prefix=(env OPENBLAS_CORETYPE="$core")
  median_ms "$("${prefix[@]}" OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" /usr/bin/python3 "$peer" \
    --threads "$threads" --steps "$steps" "${peer_model[@]}" "$@" | tee >(cat >&2))"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
median() {
  tr ' ' '\n' <<<"$1" | grep . | sort -n |
    awk '{r[NR] = $1} END { if (NR % 2) print r[(NR + 1) / 2]; else printf "%.2f\n", (r[NR / 2] + r[NR / 2 + 1]) / 2 }'
}

bf16_over_fp32="" peer_fp32_over_ours="" peer_bf16_over_ours_bf16=""
for round in $(seq "$rounds"); do
  # The whole benchmark once (what = all prints more than the GPT step), then only the GPT step.
  ours_fp32=$(median_ms "$(run_ours "$([ "$round" = 1 ] && echo "$what" || echo gpt)" fp32)")
  peer_fp32=$(run_peer)
  ours_bf16=$(median_ms "$(run_ours "$([ "$round" = 1 ] && echo "$what" || echo gpt)" bf16)")
  peer_bf16=$(run_peer --bf16)
  bf16_over_fp32+="$(ratio "$ours_bf16" "$ours_fp32") "
  peer_fp32_over_ours+="$(ratio "$peer_fp32" "$ours_fp32") "
  peer_bf16_over_ours_bf16+="$(ratio "$peer_bf16" "$ours_bf16") "
  echo "round $round: ours fp32 $ours_fp32 ms, PyTorch fp32 $peer_fp32 ms, ours bf16 $ours_bf16 ms, PyTorch bf16 $peer_bf16 ms"
done
echo "GPT step, medians of $rounds rounds (each round's ratios in brackets):"
echo "  ours bf16 / ours fp32:       $(median "$bf16_over_fp32")  [$bf16_over_fp32]"
echo "  PyTorch fp32 / ours fp32:    $(median "$peer_fp32_over_ours")x  [$peer_fp32_over_ours]"
echo "  PyTorch bf16 / ours bf16:    $(median "$peer_bf16_over_ours_bf16")x  [$peer_bf16_over_ours_bf16]"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
