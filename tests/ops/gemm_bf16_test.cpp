// ops::cpu::gemm_bf16 on each bf16 kernel this CPU has (AMX, AVX512-BF16; the fp32 fallback, which
// rounds copies of the operands, always):
// every transpose, sizes around the kernels' micro-tiles (12 x 32, 32 x 32), row blocks (96, 128),
// column tiles and depth blocks (512), odd depths, leading dimensions wider than the matrices, alpha
// and beta, beta == 0 over a C full of NaN. The reference is computed in double from the inputs
// rounded to bf16 here (round to nearest even, bit by bit, independent of the kernels' conversion
// instructions), and each element must lie within the bound of an f32 sum of K products. An element's
// bits do not depend on the part of C a call covers, and the epilogue sees each element once, final.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"
#include "ops/cpu/bf16_kernel.h"
#include "ops/cpu/gemm.h"
#include "ops/bf16_round.h"
#include "ops/gemm_case.h"

namespace {

using ops::cpu::Bf16Kernel;

using Case = GemmCase;

// The kernels on this CPU, each forced in turn; the choice is restored afterwards.
std::vector<Bf16Kernel> available_kernels() {
  std::vector<Bf16Kernel> kernels;
  for (Bf16Kernel k : {Bf16Kernel::amx, Bf16Kernel::avx512_bf16, Bf16Kernel::fp32})
    if (ops::cpu::bf16_kernel_available(k)) kernels.push_back(k);
  return kernels;
}

// Runs one case with leading dimensions 3 wider than needed and checks every element against the
// double reference of the bf16-rounded inputs:
// |C − reference| <= 2^-23 · ((K + 2) · |alpha| · Σ_k |a_k b_k| + |beta · C_before|), twice the
// first-order bound of a sum of K f32 products (each rounded once) added onto beta · C. Returns the
// largest error relative to that bound. C's padding columns must be left alone.
double worst_error_over_bound(const Case& c, engine::Generator& gen) {
  GemmOperands m(c, gen);
  ops::cpu::gemm_bf16(c.trans_a, c.trans_b, c.M, c.N, c.K, c.alpha, m.A.data(), m.lda, m.B.data(), m.ldb, c.beta,
                      m.C.data(), m.ldc);

  double worst = 0;
  for (int64_t i = 0; i < c.M; ++i) {
    for (int64_t j = 0; j < c.N; ++j) {
      double sum = 0, magnitude = 0;
      for (int64_t k = 0; k < c.K; ++k) {
        const double a = bf16_round(m.a(c, i, k)), b = bf16_round(m.b(c, k, j));
        sum += a * b;
        magnitude += std::abs(a * b);
      }
      const double c_part = c.beta == 0.f ? 0 : double(c.beta) * m.C_before[size_t(i * m.ldc + j)];
      const double want = double(c.alpha) * sum + c_part;
      const double bound =
          std::ldexp(double(c.K + 2) * std::abs(double(c.alpha)) * magnitude + std::abs(c_part), -23) + 1e-30;
      const double got = m.C[size_t(i * m.ldc + j)];
      worst = std::max(worst, std::isfinite(got) ? std::abs(got - want) / bound : HUGE_VAL);
    }
    REQUIRE(m.padding_intact(c, i));
  }
  return worst;
}

// Forces each available kernel for the body, then restores the one in use before.
template <typename Body>
void for_each_kernel(Body body) {
  const Bf16Kernel before = ops::cpu::bf16_kernel();
  for (Bf16Kernel kernel : available_kernels()) {
    ops::cpu::set_bf16_kernel(kernel);
    CAPTURE(ops::cpu::bf16_kernel_name(kernel));
    body(kernel);
  }
  ops::cpu::set_bf16_kernel(before);
}

}  // namespace

TEST_CASE("bf16 gemm matches a double reference of the rounded inputs on every kernel, transpose and tail") {
  const int previous_threads = omp_get_max_threads();
  omp_set_num_threads(2);
  std::vector<Case> cases;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      cases.push_back({ta, tb, 1, 1, 1, 1.f, 0.f});
      cases.push_back({ta, tb, 13, 33, 7, 1.f, 0.f});      // past a micro-tile of either kernel; odd depth
      cases.push_back({ta, tb, 32, 32, 32, 0.5f, 0.f});    // exactly one AMX block and depth chunk
      cases.push_back({ta, tb, 33, 47, 65, 1.f, 1.f});     // one row, column and depth past them
      cases.push_back({ta, tb, 37, 47, 513, 1.f, 0.5f});   // a second depth block of 1
      cases.push_back({ta, tb, 200, 530, 600, -1.5f, 0.25f});  // past row blocks and column tiles, threaded
    }
  for_each_kernel([&](Bf16Kernel) {
    engine::Generator gen(31);
    for (const Case& c : cases) {
      CAPTURE(c.trans_a);
      CAPTURE(c.trans_b);
      CAPTURE(c.M);
      CAPTURE(c.N);
      CAPTURE(c.K);
      CHECK(worst_error_over_bound(c, gen) <= 1.0);
    }
  });
  omp_set_num_threads(previous_threads);
}

TEST_CASE("bf16 gemm rounds its inputs: the f32 reference is missed by bf16's error, not f32's") {
  // Guards the reference above: a kernel that skipped the rounding would pass it only by luck.
  engine::Generator gen(32);
  const int64_t M = 20, N = 40, K = 64;
  const std::vector<float> A = random_floats(M * K, gen), B = random_floats(K * N, gen);
  for_each_kernel([&](Bf16Kernel) {
    std::vector<float> C(size_t(M * N)), exact(size_t(M * N));
    ops::cpu::gemm_bf16(false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, C.data(), N);
    ops::cpu::gemm<float>(false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, exact.data(), N);
    double diff = 0, norm = 0;
    for (size_t i = 0; i < C.size(); ++i) {
      diff += double(C[i] - exact[i]) * double(C[i] - exact[i]);
      norm += double(exact[i]) * double(exact[i]);
    }
    const double relative = std::sqrt(diff / norm);
    // bf16 keeps 8 significant bits: each input is off by up to 2^-9 relative, a sum of products of
    // random signs by about that much over its norm (1e-3 here); f32 sums stay near 1e-7.
    CHECK((relative > 3e-4 && relative < 1e-2));
  });
}

namespace {

// gemm_bf16 as the shared checks call it (B stored transposed).
void bf16_product(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
                  int64_t ldc, const ops::cpu::GemmEpilogue& epilogue) {
  ops::cpu::gemm_bf16(false, true, M, N, K, 1.f, A, lda, B, ldb, 0.f, C, ldc, epilogue);
}

}  // namespace

TEST_CASE("bf16 gemm gives an element the same bits whatever part of C a call covers") {
  engine::Generator gen(33);
  for_each_kernel([&](Bf16Kernel) { check_same_bits_whatever_part<float>(bf16_product, 150, 170, 700, gen); });
}

TEST_CASE("the bf16 gemm epilogue sees every element of C once, with its final value") {
  const int previous_threads = omp_get_max_threads();
  omp_set_num_threads(2);
  engine::Generator gen(34);
  for_each_kernel([&](Bf16Kernel) { check_epilogue_sees_each_element_once<float>(bf16_product, 300, 530, 520, gen); });
  omp_set_num_threads(previous_threads);
}
