// exp and tanh for the CPU kernels' inner loops. std::exp / std::tanh are library calls that GCC
// cannot vectorise (without -ffast-math), and they dominated the softmax, attention, cross-entropy
// and GELU loops. The f32 versions here are branch-free, so a loop calling them compiles to
// AVX-512 code; f64 keeps the library functions (f64 is what gradcheck checks, exactly).
//
// f32 accuracy, measured against double (tests/ops/vec_math_test.cpp): exp within 1.3 ulp (Cephes'
// expf polynomial, Moshier 1984), with exp(-inf) = 0, exp(+inf) = inf, NaN -> NaN and gradual
// underflow below -87.3; tanh within 1.3 ulp (Cephes' tanhf: an odd polynomial below |x| = 0.625,
// 1 - 2/(e^2|x| + 1) above).
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>

#ifdef __AVX512F__
#include "ops/cpu/avx512_intrinsics.h"
#endif

namespace ops::cpu {

inline float exp_f32(float x) {
  // exp(x) = 2^n · e^r, n = round(x / ln 2), r = x − n·ln 2 in [−ln2/2, ln2/2]. The clamp keeps n
  // in [−150, 129], so 2^n split into two halves is always two normal numbers: results overflow to
  // inf above 88.72 and underflow gradually to 0 below −87.34, exactly as the product rounds.
  const float clamped = std::min(std::max(x, -104.0f), 89.0f);  // NaN passes through both
  constexpr float magic = 12582912.0f;                          // 1.5 · 2^23: adding it rounds to an integer
  const float shifted = clamped * 1.44269504088896341f + magic;
  const float n = shifted - magic;
  const int32_t n_int = std::bit_cast<int32_t>(shifted) - std::bit_cast<int32_t>(magic);
  float r = std::fma(n, -0.693359375f, clamped);  // ln 2 in two parts: the first is exact in f32
  r = std::fma(n, 2.12194440e-4f, r);
  float p = 1.9875691500e-4f;
  p = std::fma(p, r, 1.3981999507e-3f);
  p = std::fma(p, r, 8.3334519073e-3f);
  p = std::fma(p, r, 4.1665795894e-2f);
  p = std::fma(p, r, 1.6666665459e-1f);
  p = std::fma(p, r, 5.0000001201e-1f);
  p = std::fma(p, r * r, r + 1.0f);
  const int32_t half = n_int >> 1;
  const float scale_a = std::bit_cast<float>((half + 127) << 23);
  const float scale_b = std::bit_cast<float>((n_int - half + 127) << 23);
  return x == -INFINITY ? 0.0f : p * scale_a * scale_b;
}

inline float tanh_f32(float x) {
  const float a = std::fabs(x);
  // |x| >= 0.625: 1 − 2/(e^2|x| + 1), which saturates to 1 once e^2|x| overflows.
  const float large = 1.0f - 2.0f / (exp_f32(2.0f * a) + 1.0f);
  // |x| < 0.625: x + x·z·P(z), z = x².
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = std::fma(p, z, 2.06390887954e-2f);
  p = std::fma(p, z, -5.37397155531e-2f);
  p = std::fma(p, z, 1.33314422036e-1f);
  p = std::fma(p, z, -3.33332819422e-1f);
  const float small = std::fma(p * z, x, x);
  return a < 0.625f ? small : std::copysign(large, x);  // NaN: the comparison fails and large is NaN
}

#ifdef __AVX512F__
// exp_f32 on 16 lanes with one instruction per step, bit for bit the same results (tested): the
// compiler's vectorisation of exp_f32 spends ~30 mask and blend instructions per vector on its
// clamps and selects (0.75 against 1.4 cycles an element). vscalefps scales by 2^n in one rounding,
// which is exp_f32's two-step scaling wherever that is exact (normal results; both round the same
// subnormals).
inline __m512 exp_f32x16(__m512 x) {
  // max(lo, x) and min(hi, x) return x itself when it is NaN (the second operand wins on NaN).
  const __m512 clamped = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
  const __m512 magic = _mm512_set1_ps(12582912.0f);  // as exp_f32: n = round(x / ln 2) by the FMA
  const __m512 n = _mm512_sub_ps(_mm512_fmadd_ps(clamped, _mm512_set1_ps(1.44269504088896341f), magic), magic);
  __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-0.693359375f), clamped);
  r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  // Below −104 (−inf included) e^x rounds to 0: those lanes are zeroed, not scaled, because a result
  // that underflows takes a microcode assist (~15x the cost: masked attention scores are −inf).
  // NaN compares unordered and keeps its lane.
  const __mmask16 representable = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-104.0f), _CMP_NLT_UQ);
  return _mm512_maskz_scalef_ps(representable, p, n);
}
#endif

// The kernels call these: the vectorisable f32 versions, the library for f64.
template <typename T>
inline T vexp(T x) {
  if constexpr (std::is_same_v<T, float>) return exp_f32(x);
  else return std::exp(x);
}

template <typename T>
inline T vtanh(T x) {
  if constexpr (std::is_same_v<T, float>) return tanh_f32(x);
  else return std::tanh(x);
}

// out[j] = e^(x[j] − shift) for j < n; out may be x. The same values as vexp element by element.
template <typename T>
void exp_shifted(const T* x, T shift, int64_t n, T* out) {
#ifdef __AVX512F__
  if constexpr (std::is_same_v<T, float>) {
    const __m512 shift_v = _mm512_set1_ps(shift);
    for (int64_t j = 0; j < n; j += 16) {
      const __mmask16 lanes = n - j >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - j)) - 1);
      _mm512_mask_storeu_ps(out + j, lanes, exp_f32x16(_mm512_sub_ps(_mm512_maskz_loadu_ps(lanes, x + j), shift_v)));
    }
    return;
  }
#endif
  for (int64_t j = 0; j < n; ++j) out[j] = vexp(x[j] - shift);
}

// max_j x_j of n >= 1 values. An OpenMP simd max reduction: GCC 12 vectorises neither a plain max
// loop (NaN ordering) nor its 16-lane version (which it left as 16 scalar chains).
template <typename T>
T max_of(const T* x, int64_t n) {
  T result = x[0];
#pragma omp simd reduction(max : result)
  for (int64_t j = 1; j < n; ++j) result = result < x[j] ? x[j] : result;  // std::max's comparison
  return result;
}

// Σ_j e^(x_j − shift) in double, also storing the terms into `terms` (which may be x) unless it is
// null. The sum
// runs in 8 lanes combined in a fixed order: deterministic, independent of threads, and it lets
// the exponentials and the additions vectorise.
template <typename T>
double sum_exp(const T* x, T shift, int64_t n, T* terms) {
  constexpr int64_t kChunk = 256, kLanes = 8;
  T buffer[kChunk];
  double lanes[kLanes] = {};
  for (int64_t start = 0; start < n; start += kChunk) {
    const int64_t length = std::min(kChunk, n - start);
    T* e = terms ? terms + start : buffer;
    exp_shifted(x + start, shift, length, e);
    int64_t j = 0;
    for (; j + kLanes <= length; j += kLanes)
      for (int64_t l = 0; l < kLanes; ++l) lanes[l] += double(e[j + l]);
    for (; j < length; ++j) lanes[j % kLanes] += double(e[j]);
  }
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

// Σ_j term(j) for j < n, in double, in 8 lanes combined in a fixed order as sum_exp: deterministic,
// and vectorised when `term` is (a plain double reduction is not, without -ffast-math).
template <typename Term>
double sum_in_lanes(int64_t n, Term term) {
  constexpr int64_t kLanes = 8;
  double lanes[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) lanes[l] += term(j + l);
  for (; j < n; ++j) lanes[j % kLanes] += term(j);
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

// Σ_j x_j in double, in 8 lanes as sum_exp.
template <typename T>
double sum_as_double(const T* x, int64_t n) {
  return sum_in_lanes(n, [x](int64_t j) { return double(x[j]); });
}

}  // namespace ops::cpu
