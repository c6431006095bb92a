// One GEMM test case's operands, shared by the f32 and bf16 GEMM tests: random A, B and C stored
// with leading dimensions 3 wider than the matrices, C full of NaN when beta == 0 (C must not be
// read), and C's padding columns set to a marker the product must leave alone.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"

struct GemmCase {
  bool trans_a, trans_b;
  int64_t M, N, K;
  float alpha, beta;
};

inline std::vector<float> random_floats(int64_t count, engine::Generator& gen) {
  return engine::Tensor::randn({count}, gen).to_vector<float>();
}

struct GemmOperands {
  static constexpr float kPadding = 12345.f;
  int64_t lda, ldb, ldc;
  std::vector<float> A, B, C, C_before;

  GemmOperands(const GemmCase& c, engine::Generator& gen) {
    const int64_t a_rows = c.trans_a ? c.K : c.M, a_cols = c.trans_a ? c.M : c.K;
    const int64_t b_rows = c.trans_b ? c.N : c.K, b_cols = c.trans_b ? c.K : c.N;
    lda = a_cols + 3, ldb = b_cols + 3, ldc = c.N + 3;
    A = random_floats(a_rows * lda, gen), B = random_floats(b_rows * ldb, gen);
    C = random_floats(c.M * ldc, gen);
    C_before = C;
    if (c.beta == 0.f)
      for (float& x : C) x = std::numeric_limits<float>::quiet_NaN();
    for (int64_t i = 0; i < c.M; ++i)
      for (int64_t j = c.N; j < ldc; ++j) C[size_t(i * ldc + j)] = kPadding;
  }
  // Element (i, k) of op(A) and (k, j) of op(B).
  float a(const GemmCase& c, int64_t i, int64_t k) const { return c.trans_a ? A[size_t(k * lda + i)] : A[size_t(i * lda + k)]; }
  float b(const GemmCase& c, int64_t k, int64_t j) const { return c.trans_b ? B[size_t(j * ldb + k)] : B[size_t(k * ldb + j)]; }
  // Whether row i of C kept its padding.
  bool padding_intact(const GemmCase& c, int64_t i) const {
    for (int64_t j = c.N; j < ldc; ++j)
      if (C[size_t(i * ldc + j)] != kPadding) return false;
    return true;
  }
};
