// GPT-2's GELU for the CPU kernels (ops::gelu in elementwise.cpp, linear's fused activation in
// matmul.cpp): 0.5·x·(1 + tanh z) with z = √(2/π)·(x + 0.044715·x³), written as x·σ(2z) since
// 0.5·(1 + tanh z) = σ(2z) = 1 / (1 + e^(−2z)): one exponential and one division (tanh costs an
// exponential, a division and a polynomial), and no cancellation in 1 + tanh z for negative x.
// The element-wise and the chunked forms give the same values (exp_shifted is vexp bit for bit).
#pragma once

#include <algorithm>
#include <cstdint>

#include "ops/cpu/vec_math.h"

namespace ops::cpu {

inline constexpr double kGeluScale = 0.7978845608028654, kGeluCubic = 0.044715;  // √(2/π), GPT-2's 0.044715

// −2z of x, the exponent of σ(2z)'s denominator.
template <typename T>
inline T gelu_exponent(T x) {
  return T(-2 * kGeluScale) * (x + T(kGeluCubic) * x * x * x);
}

// d/dx x·σ(2z) = σ + 2·x·σ·(1 − σ)·z', z' = √(2/π)·(1 + 3·0.044715·x²), given e = e^(−2z).
template <typename T>
inline T gelu_derivative_from(T x, T e) {
  const T sigma = T(1) / (T(1) + e);
  return sigma + T(2) * x * sigma * (T(1) - sigma) * T(kGeluScale) * (T(1) + T(3 * kGeluCubic) * x * x);
}

template <typename T>
inline T gelu(T x) {
  return x / (T(1) + vexp(gelu_exponent(x)));
}

template <typename T>
inline T gelu_derivative(T x) {
  return gelu_derivative_from(x, vexp(gelu_exponent(x)));
}

// The same over n contiguous values, the exponentials of 256 at a time through exp_shifted (16-lane
// intrinsics for f32 on AVX-512). y may be x; grad_x = grad_y · gelu'(x).
inline constexpr int64_t kGeluChunk = 256;

template <typename T>
void gelu_values(const T* x, int64_t n, T* y) {
  T e[kGeluChunk];
  for (int64_t start = 0; start < n; start += kGeluChunk) {
    const int64_t count = std::min(kGeluChunk, n - start);
    for (int64_t k = 0; k < count; ++k) e[k] = gelu_exponent(x[start + k]);
    exp_shifted(e, T(0), count, e);
    for (int64_t k = 0; k < count; ++k) y[start + k] = x[start + k] / (T(1) + e[k]);
  }
}

template <typename T>
void gelu_grads(const T* grad_y, const T* x, int64_t n, T* grad_x) {
  T e[kGeluChunk];
  for (int64_t start = 0; start < n; start += kGeluChunk) {
    const int64_t count = std::min(kGeluChunk, n - start);
    for (int64_t k = 0; k < count; ++k) e[k] = gelu_exponent(x[start + k]);
    exp_shifted(e, T(0), count, e);
    for (int64_t k = 0; k < count; ++k)
      grad_x[start + k] = grad_y[start + k] * gelu_derivative_from(x[start + k], e[k]);
  }
}

}  // namespace ops::cpu
