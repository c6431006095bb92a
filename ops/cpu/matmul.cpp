// CPU kernels for matmul and linear (see ops/cpu/matmul.h).
#include "ops/cpu/matmul.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "ops/cpu/gelu.h"
#include "ops/cpu/gemm.h"
#include "ops/cpu/vec_math.h"

namespace ops::cpu {

namespace {

// Below this many multiply-adds per product, threading one GEMM costs more than it gains.
constexpr int64_t small_gemm_macs = int64_t(1) << 21;

}  // namespace

template <typename T>
void batched_gemm(int64_t batch, const int64_t* a_offsets, const int64_t* b_offsets, bool trans_a, bool trans_b,
                  int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb, T* C,
                  bool bf16) {
  auto product = [&](int64_t i) {
    if constexpr (std::is_same_v<T, float>)
      if (bf16) {
        gemm_bf16(trans_a, trans_b, M, N, K, 1.f, A + a_offsets[i], lda, B + b_offsets[i], ldb, 0.f, C + i * M * N, N);
        return;
      }
    gemm<T>(trans_a, trans_b, M, N, K, T(1), A + a_offsets[i], lda, B + b_offsets[i], ldb, T(0), C + i * M * N, N);
  };
  if (batch > 1 && M * N * K < small_gemm_macs) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < batch; ++i) product(i);
    return;
  }
  // Not inside a region (not even an inactive one): a threaded GEMM nested in a region would start a
  // fresh team, i.e. create threads, for every product.
  for (int64_t i = 0; i < batch; ++i) product(i);
}

template <typename T>
void linear_epilogue(T* y, T* pre, const T* bias, int64_t rows, int64_t cols, int64_t ld, bool gelu) {
  for (int64_t row = 0; row < rows; ++row) {
    T* y_row = y + row * ld;
    if (bias)
      for (int64_t c = 0; c < cols; ++c) y_row[c] += bias[c];
    if (gelu) {
      T* pre_row = pre + row * ld;
      std::copy_n(y_row, cols, pre_row);
      gelu_values(pre_row, cols, y_row);
    }
  }
}

template <typename T>
void gelu_backward(T* grad_pre, const T* grad_y, const T* pre, int64_t n) {
  const int64_t chunks = (n + kGeluChunk - 1) / kGeluChunk;
#pragma omp parallel for schedule(static) if (n > (1 << 15))
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    const int64_t start = chunk * kGeluChunk;
    gelu_grads(grad_y + start, pre + start, std::min(kGeluChunk, n - start), grad_pre + start);
  }
}

template <typename T>
void column_sums(T* out, const T* g, int64_t N, int64_t O) {
  constexpr int64_t block = 64;
  const int64_t blocks = (O + block - 1) / block;
#pragma omp parallel for schedule(static) if (N * O > (1 << 15) && blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * block, width = std::min(block, O - begin);
    double sums[block] = {};
    for (int64_t row = 0; row < N; ++row) {
      const T* g_row = g + row * O + begin;
      for (int64_t o = 0; o < width; ++o) sums[o] += double(g_row[o]);
    }
    for (int64_t o = 0; o < width; ++o) out[begin + o] = T(sums[o]);
  }
}

#define INSTANTIATE(T)                                                                                          \
  template void batched_gemm<T>(int64_t, const int64_t*, const int64_t*, bool, bool, int64_t, int64_t, int64_t, \
                                const T*, int64_t, const T*, int64_t, T*, bool);                                \
  template void linear_epilogue<T>(T*, T*, const T*, int64_t, int64_t, int64_t, bool);                          \
  template void gelu_backward<T>(T*, const T*, const T*, int64_t);                                              \
  template void column_sums<T>(T*, const T*, int64_t, int64_t);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace ops::cpu
