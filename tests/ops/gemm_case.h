// What the f32 and bf16 GEMM tests share: one case's operands (random A, B and C stored with
// leading dimensions 3 wider than the matrices, C full of NaN when beta == 0, since C must not be
// read, and C's padding columns set to a marker the product must leave alone), and the checks that an
// element's bits do not depend on the part of C a call covers and that the epilogue sees each element
// once, final.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"
#include "ops/cpu/gemm.h"

struct GemmCase {
  bool trans_a, trans_b;
  int64_t M, N, K;
  float alpha, beta;
};

template <typename T>
std::vector<T> random_values(int64_t count, engine::Generator& gen) {
  return engine::Tensor::randn({count}, gen, engine::dtype_of<T>()).template to_vector<T>();
}

inline std::vector<float> random_floats(int64_t count, engine::Generator& gen) { return random_values<float>(count, gen); }

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

// The product under test: C = op(A)·op(B), A (M, K) stored as is, B stored (N, K), i.e. transposed.
template <typename T>
using GemmUnderTest = std::function<void(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
                                         int64_t ldb, T* C, int64_t ldc, const ops::cpu::GemmEpilogue& epilogue)>;

// The threaded GEMM cuts C into tiles; an element must not depend on its tile: the corner of C from
// (13, 21), which starts mid-tile, computed alone equals the same corner of the whole product.
template <typename T>
void check_same_bits_whatever_part(const GemmUnderTest<T>& gemm, int64_t M, int64_t N, int64_t K,
                                   engine::Generator& gen) {
  const std::vector<T> A = random_values<T>(M * K, gen), B = random_values<T>(N * K, gen);
  std::vector<T> whole(size_t(M * N)), part(size_t(M * N), T(0));
  gemm(M, N, K, A.data(), K, B.data(), K, whole.data(), N, {});
  const int64_t row = 13, col = 21;
  gemm(M - row, N - col, K, A.data() + row * K, K, B.data() + col * K, K, part.data() + row * N + col, N, {});
  for (int64_t i = row; i < M; ++i)
    for (int64_t j = col; j < N; ++j) REQUIRE(part[size_t(i * N + j)] == whole[size_t(i * N + j)]);
}

// The epilogue must see each element of C exactly once, holding its final value (after the last
// depth block), threaded and on one thread.
template <typename T>
void check_epilogue_sees_each_element_once(const GemmUnderTest<T>& gemm, int64_t M, int64_t N, int64_t K,
                                           engine::Generator& gen) {
  const std::vector<T> A = random_values<T>(M * K, gen), B = random_values<T>(N * K, gen);
  std::vector<T> plain(size_t(M * N)), C(size_t(M * N)), seen(size_t(M * N));
  std::vector<int> visits(size_t(M * N), 0);
  gemm(M, N, K, A.data(), K, B.data(), K, plain.data(), N, {});
  gemm(M, N, K, A.data(), K, B.data(), K, C.data(), N, [&](int64_t row, int64_t col, int64_t rows, int64_t cols) {
    for (int64_t i = row; i < row + rows; ++i)
      for (int64_t j = col; j < col + cols; ++j) {
        seen[size_t(i * N + j)] = C[size_t(i * N + j)];
        ++visits[size_t(i * N + j)];  // blocks are disjoint: no two threads share an element
      }
  });
  CHECK(std::all_of(visits.begin(), visits.end(), [](int v) { return v == 1; }));
  CHECK(seen == plain);
}
