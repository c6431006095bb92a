// The multiply-add peaks of this machine's OpenMP threads, measured now, for the benchmarks' MFU:
// f32 FMA (the f32 GEMM's instruction), VDPBF16PS (AVX512-BF16) and TDPBF16PS (AMX), each a loop
// of independent accumulators held in registers (tiles for AMX), so nothing but the instruction's
// throughput limits it; and the core clock, from a chain of dependent integer adds, so that each
// peak can be checked against the CPU's documented FLOPs per cycle (docs/gemm.md): on Intel Xeons
// with two AVX-512 FMA units 64 f32 FLOP per cycle per core, on AMX 1024 bf16 FLOP.
//
// Every thread times its own bursts (~20 ms each) and keeps its best: on a shared machine a
// descheduled thread otherwise stretches the whole region, and a peak measured in a bad second is
// beaten by the program it is meant to bound (an earlier version, timing 0.1 s regions of both
// threads together, reported 184 GFLOP/s against a 206 GFLOP/s GPT step). The peak is the sum of
// the threads' best rates: what the cores deliver when they run.
#pragma once

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <vector>

#include "ops/cpu/bf16_kernel.h"

namespace apps {

struct Peak {
  double gflops = 0;           // all threads; 0: the instruction is missing here
  double flops_per_cycle = 0;  // per thread per core clock cycle
};

struct Peaks {
  int threads = 1;
  double clock_ghz = 0;  // the core clock while the integer chain ran (turbo included)
  Peak fp32, avx512_bf16, amx_bf16;
};

namespace detail {

// Best rate (operations per second) over `bursts` timed calls of `burst` on every thread, summed
// over the threads; `burst` returns the operations it did.
inline double best_rate_per_thread_summed(const std::function<double()>& burst, int bursts) {
  std::vector<double> best(size_t(omp_get_max_threads()), 0.0);
#pragma omp parallel
  {
    double& mine = best[size_t(omp_get_thread_num())];
    for (int b = 0; b < bursts; ++b) {
      const auto start = std::chrono::steady_clock::now();
      const double operations = burst();
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      mine = std::max(mine, operations / seconds);
    }
  }
  double total = 0;
  for (double rate : best) total += rate;
  return total;
}

// Core clock cycles per second of one thread: a chain of dependent register adds (x += x), one
// cycle each, in short bursts, the best of many. (A chain of `add $1` measured 4x the clock on this
// Xeon, whose renamer folds immediate adds.)
inline double core_cycles_per_second() {
  constexpr int64_t kIterations = int64_t(1) << 18, kAddsPerIteration = 8;
  double best = 0;
  for (int repeat = 0; repeat < 50; ++repeat) {
    uint64_t x = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < kIterations; ++i)
      __asm__ volatile("add %0, %0\n\tadd %0, %0\n\tadd %0, %0\n\tadd %0, %0\n\t"
                       "add %0, %0\n\tadd %0, %0\n\tadd %0, %0\n\tadd %0, %0"
                       : "+r"(x));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, double(kIterations * kAddsPerIteration) / seconds);
  }
  return best;
}

// FLOPs of one burst of 24 independent chains of f32 FMAs at the widest vector the build targets.
inline double fp32_fma_burst() {
#if defined(__AVX512F__)
  using Vec = __m512;
  constexpr int kLanes = 16;
  auto splat = [](float x) { return _mm512_set1_ps(x); };
  auto fma = [](Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); };
#elif defined(__AVX2__) && defined(__FMA__)
  using Vec = __m256;
  constexpr int kLanes = 8;
  auto splat = [](float x) { return _mm256_set1_ps(x); };
  auto fma = [](Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); };
#else
  using Vec = float;
  constexpr int kLanes = 1;
  auto splat = [](float x) { return x; };
  auto fma = [](Vec a, Vec b, Vec c) { return std::fma(a, b, c); };
#endif
  // 24 chains: the 4-cycle FMA latency times 2 pipes needs 8; 24 (+ 2 operands) still fit in the 32
  // vector registers.
  constexpr int kChains = 24;
  constexpr int64_t kIterations = int64_t(1) << 17;
  Vec chains[kChains];
  for (int c = 0; c < kChains; ++c) chains[c] = splat(1.f + float(c) * 1e-7f);
  const Vec scale = splat(0.9999999f), offset = splat(1e-8f);
  for (int64_t i = 0; i < kIterations; ++i) {
#pragma GCC unroll 24
    for (int c = 0; c < kChains; ++c) chains[c] = fma(chains[c], scale, offset);
  }
  float lanes[kLanes], total = 0;
  for (int c = 0; c < kChains; ++c) {
    std::memcpy(lanes, &chains[c], sizeof lanes);
    for (float x : lanes) total += x;
  }
  __asm__ volatile("" : : "r"(total));  // the chains are used: the loop stays
  return 2.0 * kLanes * kChains * double(kIterations);
}

// FLOPs of one burst of 24 independent chains of VDPBF16PS (16 lanes x 2 pairs: 64 FLOPs each).
__attribute__((target("avx512f,avx512bf16"))) inline double avx512_bf16_burst() {
  constexpr int kChains = 24;
  constexpr int64_t kIterations = int64_t(1) << 16;
  __m512 chains[kChains];
  for (int c = 0; c < kChains; ++c) chains[c] = _mm512_set1_ps(float(c));
  const __m512bh a = __m512bh(_mm512_set1_epi32(0x3c803c80)), b = a;  // bf16 1/64 in both halves
  for (int64_t i = 0; i < kIterations; ++i) {
#pragma GCC unroll 24
    for (int c = 0; c < kChains; ++c) chains[c] = _mm512_dpbf16_ps(chains[c], a, b);
  }
  float total = 0, lanes[16];
  for (int c = 0; c < kChains; ++c) {
    _mm512_storeu_ps(lanes, chains[c]);
    total += lanes[0];
  }
  __asm__ volatile("" : : "r"(total));
  return 64.0 * kChains * double(kIterations);
}

// FLOPs of one burst of TDPBF16PS into 6 independent accumulator tiles (16 x 16 f32 each, from
// 16 x 32 bf16 times 32 x 16 bf16: 16 384 FLOPs per instruction); tiles 6 and 7 hold the operands.
// The tile instructions are asm statements: they assemble whatever the build targets.
__attribute__((target("amx-tile,amx-bf16"))) inline double amx_bf16_burst() {
  struct alignas(64) {
    uint8_t palette = 1, start_row = 0, reserved[14] = {};
    uint16_t bytes_per_row[16] = {64, 64, 64, 64, 64, 64, 64, 64};
    uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
  } config;
  alignas(64) uint16_t operand[16 * 32];
  std::fill(operand, operand + 16 * 32, uint16_t(0x3c80));  // bf16 1/64
  alignas(64) float out[16 * 16];
  constexpr int64_t kIterations = int64_t(1) << 12;
  _tile_loadconfig(&config);
  _tile_loadd(6, operand, 64);
  _tile_loadd(7, operand, 64);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_zero(4);
  _tile_zero(5);
  for (int64_t i = 0; i < kIterations; ++i) {
    _tile_dpbf16ps(0, 6, 7);
    _tile_dpbf16ps(1, 6, 7);
    _tile_dpbf16ps(2, 6, 7);
    _tile_dpbf16ps(3, 6, 7);
    _tile_dpbf16ps(4, 6, 7);
    _tile_dpbf16ps(5, 6, 7);
  }
  _tile_stored(0, out, 64);
  _tile_release();
  __asm__ volatile("" : : "r"(out[0]));
  return 16384.0 * 6 * double(kIterations);
}

}  // namespace detail

// Measures the clock and every peak this CPU has (~1.5 s in all).
inline Peaks measure_peaks() {
  Peaks peaks;
  peaks.threads = omp_get_max_threads();
  peaks.clock_ghz = detail::core_cycles_per_second() / 1e9;
  auto peak_of = [&](const std::function<double()>& burst) {
    Peak peak;
    peak.gflops = detail::best_rate_per_thread_summed(burst, 20) / 1e9;
    peak.flops_per_cycle = peak.gflops / peaks.threads / peaks.clock_ghz;
    return peak;
  };
  peaks.fp32 = peak_of(detail::fp32_fma_burst);
  if (ops::cpu::bf16_kernel_available(ops::cpu::Bf16Kernel::avx512_bf16))
    peaks.avx512_bf16 = peak_of(detail::avx512_bf16_burst);
  if (ops::cpu::bf16_kernel_available(ops::cpu::Bf16Kernel::amx)) peaks.amx_bf16 = peak_of(detail::amx_bf16_burst);
  return peaks;
}

}  // namespace apps
