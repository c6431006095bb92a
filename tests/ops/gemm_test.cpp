// ops::cpu::gemm called directly: every transpose, odd sizes (one past a 12 x 32 tile, one past a
// depth of 256, more than one thread tile of C), leading dimensions wider than the matrices, alpha
// and beta, and beta == 0 over a C full of NaN (C must not be read).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"
#include "ops/cpu/gemm.h"

namespace {

struct Case {
  bool trans_a, trans_b;
  int64_t M, N, K;
  float alpha, beta;
};

std::vector<float> random_floats(int64_t count, engine::Generator& gen) {
  return engine::Tensor::randn({count}, gen).to_vector<float>();
}

// Runs one case with leading dimensions 3 wider than needed; returns ‖C − reference‖ / ‖reference‖,
// the reference computed in double, and checks that C's padding columns were left alone.
double relative_error(const Case& c, engine::Generator& gen) {
  const int64_t a_rows = c.trans_a ? c.K : c.M, a_cols = c.trans_a ? c.M : c.K;
  const int64_t b_rows = c.trans_b ? c.N : c.K, b_cols = c.trans_b ? c.K : c.N;
  const int64_t lda = a_cols + 3, ldb = b_cols + 3, ldc = c.N + 3;
  const std::vector<float> A = random_floats(a_rows * lda, gen), B = random_floats(b_rows * ldb, gen);
  std::vector<float> C = random_floats(c.M * ldc, gen);
  const std::vector<float> C_before = C;
  if (c.beta == 0.f)
    for (float& x : C) x = std::numeric_limits<float>::quiet_NaN();
  const float padding = 12345.f;
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t j = c.N; j < ldc; ++j) C[size_t(i * ldc + j)] = padding;

  ops::cpu::gemm<float>(c.trans_a, c.trans_b, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, C.data(),
                        ldc);

  double diff = 0, norm = 0;
  for (int64_t i = 0; i < c.M; ++i) {
    for (int64_t j = 0; j < c.N; ++j) {
      double sum = 0;
      for (int64_t k = 0; k < c.K; ++k) {
        const double a = c.trans_a ? A[size_t(k * lda + i)] : A[size_t(i * lda + k)];
        const double b = c.trans_b ? B[size_t(j * ldb + k)] : B[size_t(k * ldb + j)];
        sum += a * b;
      }
      double want = double(c.alpha) * sum;
      if (c.beta != 0.f) want += double(c.beta) * C_before[size_t(i * ldc + j)];
      const double got = C[size_t(i * ldc + j)];
      diff += (got - want) * (got - want);
      norm += want * want;
    }
    for (int64_t j = c.N; j < ldc; ++j) REQUIRE(C[size_t(i * ldc + j)] == padding);
  }
  return std::sqrt(diff / norm);
}

}  // namespace

TEST_CASE("f32 gemm matches a double reference for every transpose, odd sizes, alpha and beta") {
  engine::Generator gen(11);
  std::vector<Case> cases;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      cases.push_back({ta, tb, 1, 1, 1, 1.f, 0.f});
      cases.push_back({ta, tb, 13, 33, 7, 1.f, 0.f});
      cases.push_back({ta, tb, 12, 32, 256, 0.5f, 0.f});
      cases.push_back({ta, tb, 37, 47, 257, 1.f, 1.f});
      cases.push_back({ta, tb, 200, 530, 600, -1.5f, 0.25f});  // threaded: several tiles of C
    }
  for (const Case& c : cases) {
    CAPTURE(c.trans_a);
    CAPTURE(c.trans_b);
    CAPTURE(c.M);
    CAPTURE(c.N);
    CAPTURE(c.K);
    CHECK(relative_error(c, gen) < 1e-5);
  }
}
