// The FP32 multiply-add peak of this machine's OpenMP threads, measured now: MFU against a peak
// taken on another day, or another CPU model behind the same vCPU count, says little (FACTS.md's
// 448 GFLOP/s was an AMD Zen 5 at ~3.5 GHz; an Intel Xeon host measured ~310 on 2026-11-29).
#pragma once

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace bench {

// Each thread runs 24 independent chains of vector FMAs (enough to hide the FMA latency on two
// pipes) for ~0.1 s; best of three. The widest FMA the build targets: AVX-512, AVX2+FMA, or scalar.
inline double measured_fp32_peak_gflops() {
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
  auto sum = [](const Vec& a) {
    float lanes[kLanes], total = 0;
    std::memcpy(lanes, &a, sizeof a);
    for (float x : lanes) total += x;
    return total;
  };
  constexpr int kChains = 24;
  constexpr int64_t kIterations = int64_t(1) << 24;
  double best = 0;
  for (int repeat = 0; repeat < 3; ++repeat) {
    float checksum = 0;
    const auto start = std::chrono::steady_clock::now();
#pragma omp parallel reduction(+ : checksum)
    {
      Vec chains[kChains];
      for (int c = 0; c < kChains; ++c) chains[c] = splat(1.f + float(c) * 1e-7f);
      const Vec scale = splat(0.9999999f), offset = splat(1e-8f);
      for (int64_t i = 0; i < kIterations; ++i) {
#pragma GCC unroll 24
        for (int c = 0; c < kChains; ++c) chains[c] = fma(chains[c], scale, offset);
      }
      for (int c = 0; c < kChains; ++c) checksum += sum(chains[c]);
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!std::isfinite(checksum)) return 0;  // never: the chains converge; keeps the loop observable
    const double flops = 2.0 * kLanes * kChains * double(kIterations) * omp_get_max_threads();
    best = std::max(best, flops / seconds / 1e9);
  }
  return best;
}

}  // namespace bench
