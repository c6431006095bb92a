// The contrastive and distillation losses (docs/method.md#contrastive-loss, docs/method.md#distillation-loss): hand-computed values, the 'mean over
// all elements' KL reduction, the detached teacher, and f64 gradchecks.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "engine/error.h"
#include "engine/gradcheck.h"
#include "engine/rng.h"
#include "ops/indexing.h"
#include "seqpe/contrastive_loss.h"
#include "seqpe/distillation_loss.h"

using engine::Dtype;
using engine::Tensor;

namespace {

// Reference distillation loss in plain double loops over (B, n, D) row-major values.
double reference_distillation(const std::vector<double>& teacher, const std::vector<double>& student, int64_t B,
                              int64_t n, int64_t D, int64_t H) {
  const int64_t E = D / H;
  auto log_softmax_rows = [&](const std::vector<double>& x, int64_t b, int64_t h) {
    std::vector<double> s(size_t(n * n));
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double dot = 0;
        for (int64_t e = 0; e < E; ++e) {
          dot += x[size_t((b * n + i) * D + h * E + e)] * x[size_t((b * n + j) * D + h * E + e)];
        }
        s[size_t(i * n + j)] = dot;
      }
      double z = 0;
      for (int64_t j = 0; j < n; ++j) z += std::exp(s[size_t(i * n + j)]);
      for (int64_t j = 0; j < n; ++j) s[size_t(i * n + j)] -= std::log(z);
    }
    return s;
  };
  double total = 0;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      const auto lt = log_softmax_rows(teacher, b, h), ls = log_softmax_rows(student, b, h);
      for (size_t k = 0; k < lt.size(); ++k) {
        total += std::exp(lt[k]) * (lt[k] - ls[k]) + std::exp(ls[k]) * (ls[k] - lt[k]);
      }
    }
  }
  return total / double(B * H * n * n);
}

}  // namespace

TEST_CASE("contrastive loss: cross entropy over raw dot products, averaged over pivots") {
  // Pivot 0 = (1, 2), candidates (1, 0), (0, 1): logits 1, 2, label 0 -> log(e + e²) − 1 = log(1 + e).
  // Pivot 1 = (0.5, −1), candidates (2, 0), (1, 1): logits 1, −0.5, label 1 -> log(e + e^−0.5) + 0.5.
  Tensor pivots = Tensor::from_vector({1, 2, 0.5, -1}, {2, 2}, Dtype::f64);
  Tensor candidates = Tensor::from_vector({1, 0, 0, 1, 2, 0, 1, 1}, {2, 2, 2}, Dtype::f64);
  Tensor labels = Tensor::from_indices({0, 1}, {2});
  const double first = std::log(1 + std::exp(1.0));
  const double second = std::log(std::exp(1.0) + std::exp(-0.5)) + 0.5;
  CHECK(seqpe::contrastive_loss(pivots, candidates, labels).item() ==
        doctest::Approx((first + second) / 2).epsilon(1e-12));
  CHECK(seqpe::contrastive_loss(pivots.narrow(0, 0, 1), candidates.narrow(0, 0, 1), labels.narrow(0, 0, 1)).item() ==
        doctest::Approx(first).epsilon(1e-12));
}

TEST_CASE("contrastive loss: gradcheck in f64, non-contiguous candidates") {
  engine::Generator gen(11);
  const int64_t B = 3, K = 5, D = 4;
  Tensor pivots = Tensor::randn({B, D}, gen, Dtype::f64).requires_grad_();
  Tensor candidates_t = Tensor::randn({B, D, K}, gen, Dtype::f64).requires_grad_();  // viewed as (B, K, D)
  Tensor labels = Tensor::from_indices({4, 0, 2}, {B});
  auto result = engine::gradcheck(
      [&](const std::vector<Tensor>& in) { return seqpe::contrastive_loss(in[0], in[1].transpose(1, 2), labels); },
      {pivots, candidates_t});
  CHECK_MESSAGE(result.ok, result.message);
}

TEST_CASE("contrastive loss: shape errors name the function") {
  Tensor pivots = Tensor::ones({2, 3}, Dtype::f64), candidates = Tensor::ones({2, 4, 5}, Dtype::f64);
  CHECK_THROWS_WITH_AS(seqpe::contrastive_loss(pivots, candidates, Tensor::from_indices({0, 1}, {2})),
                       doctest::Contains("contrastive_loss"), engine::Error);
}

TEST_CASE("distillation loss: n_t = 2, H = 1 by hand") {
  // Teacher rows (1, 0), (0, 1): S_T = I, so every row of P_T is (e, 1) / (e + 1) rotated.
  // Student rows (1, 1), (1, −1): S_S = [[2, 0], [0, 2]], rows (e², 1) / (e² + 1).
  Tensor teacher = Tensor::from_vector({1, 0, 0, 1}, {1, 2, 2}, Dtype::f64);
  Tensor student = Tensor::from_vector({1, 1, 1, -1}, {1, 2, 2}, Dtype::f64);
  const double pt_hi = std::exp(1.0) / (std::exp(1.0) + 1), pt_lo = 1 - pt_hi;
  const double ps_hi = std::exp(2.0) / (std::exp(2.0) + 1), ps_lo = 1 - ps_hi;
  // Each of the 2 rows contributes the same; the 'mean' reduction divides the sum by n·n = 4.
  const double row = pt_hi * std::log(pt_hi / ps_hi) + pt_lo * std::log(pt_lo / ps_lo) +
                     ps_hi * std::log(ps_hi / pt_hi) + ps_lo * std::log(ps_lo / pt_lo);
  const double expected = 2 * row / 4;
  CHECK(seqpe::distillation_loss(teacher, student, 1).item() == doctest::Approx(expected).epsilon(1e-12));
  CHECK(expected == doctest::Approx(reference_distillation({1, 0, 0, 1}, {1, 1, 1, -1}, 1, 2, 2, 1)).epsilon(1e-12));
}

TEST_CASE("distillation loss: several offsets and heads match the reference; the mean is over all elements") {
  engine::Generator gen(5);
  const int64_t B = 2, n = 3, D = 6, H = 3;
  Tensor teacher = Tensor::randn({B, n, D}, gen, Dtype::f64);
  Tensor student = Tensor::randn({B, n, D}, gen, Dtype::f64);
  const double loss = seqpe::distillation_loss(teacher, student, H).item();
  CHECK(loss == doctest::Approx(reference_distillation(teacher.to_vector<double>(), student.to_vector<double>(), B,
                                                       n, D, H))
                    .epsilon(1e-12));
  // Repeating the batch leaves a mean unchanged (a sum would double).
  const double doubled =
      seqpe::distillation_loss(ops::concat({teacher, teacher}, 0), ops::concat({student, student}, 0), H).item();
  CHECK(doubled == doctest::Approx(loss).epsilon(1e-12));
  // Equal teacher and student: both KL terms vanish.
  CHECK(std::abs(seqpe::distillation_loss(teacher, teacher, H).item()) < 1e-14);
}

TEST_CASE("distillation loss: the teacher gets no gradient, the student does") {
  engine::Generator gen(6);
  Tensor teacher = Tensor::randn({2, 4, 8}, gen, Dtype::f64).requires_grad_();
  Tensor student = Tensor::randn({2, 4, 8}, gen, Dtype::f64).requires_grad_();
  seqpe::distillation_loss(teacher, student, 2).backward();
  CHECK_FALSE(teacher.grad().defined());
  REQUIRE(student.grad().defined());
  double norm = 0;
  for (double g : student.grad().to_vector<double>()) norm += g * g;
  CHECK(norm > 1e-6);
}

TEST_CASE("distillation loss: gradcheck in f64 w.r.t. a non-contiguous student") {
  engine::Generator gen(7);
  const int64_t B = 2, n = 3, D = 4;
  Tensor teacher = Tensor::randn({B, n, D}, gen, Dtype::f64);
  Tensor student_t = Tensor::randn({B, D, n}, gen, Dtype::f64).requires_grad_();  // viewed as (B, n, D)
  auto result = engine::gradcheck(
      [&](const std::vector<Tensor>& in) { return seqpe::distillation_loss(teacher, in[0].transpose(1, 2), 2); },
      {student_t});
  CHECK_MESSAGE(result.ok, result.message);
}

TEST_CASE("distillation loss: errors name the function") {
  Tensor a = Tensor::ones({1, 2, 6}, Dtype::f64);
  CHECK_THROWS_WITH_AS(seqpe::distillation_loss(a, Tensor::ones({1, 3, 6}, Dtype::f64), 2),
                       doctest::Contains("distillation_loss"), engine::Error);
  CHECK_THROWS_WITH_AS(seqpe::distillation_loss(a, a, 4), doctest::Contains("divisible"), engine::Error);
}
