// kl_div: a hand-computed value, gradcheck (f64) in both arguments, a detached target, errors.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/autograd.h"
#include "engine/gradcheck.h"
#include "engine/rng.h"
#include "ops/kl_div.h"

using engine::Dtype;
using engine::Tensor;

TEST_CASE("kl_div: hand-computed mean of p·(log p − log q)") {
  // p = [0.5, 0.5], q = [0.25, 0.75]: (0.5·ln 2 + 0.5·ln(2/3)) / 2 elements.
  Tensor log_q = Tensor::from_vector({std::log(0.25), std::log(0.75)}, {2}, Dtype::f64);
  Tensor log_p = Tensor::from_vector({std::log(0.5), std::log(0.5)}, {2}, Dtype::f64);
  CHECK(ops::kl_div(log_q, log_p).item() ==
        doctest::Approx((0.5 * std::log(2.0) + 0.5 * std::log(2.0 / 3.0)) / 2).epsilon(1e-14));
  CHECK(ops::kl_div(log_p, log_p).item() == 0.0);
}

TEST_CASE("kl_div gradients (f64 gradcheck) in both arguments, including a transposed view") {
  engine::Generator gen(21);
  Tensor log_q = Tensor::randn({3, 4}, gen, Dtype::f64);
  Tensor log_p = Tensor::randn({4, 3}, gen, Dtype::f64).transpose(0, 1).detach();
  log_q.requires_grad_();
  log_p.requires_grad_();
  auto result = engine::gradcheck([](const std::vector<Tensor>& in) { return ops::kl_div(in[0], in[1]); },
                                  {log_q, log_p});
  CHECK_MESSAGE(result.ok, result.message);
}

TEST_CASE("kl_div with a detached target gives gradient to the input only; errors") {
  engine::Generator gen(22);
  Tensor log_q = Tensor::randn({5}, gen, Dtype::f64), log_p = Tensor::randn({5}, gen, Dtype::f64);
  log_q.requires_grad_();
  log_p.requires_grad_();
  ops::kl_div(log_q, log_p.detach()).backward();
  CHECK(log_q.grad().defined());
  CHECK(!log_p.grad().defined());
  const std::vector<double> p = log_p.to_vector<double>(), g = log_q.grad().to_vector<double>();
  for (size_t i = 0; i < p.size(); ++i) CHECK(g[i] == doctest::Approx(-std::exp(p[i]) / 5).epsilon(1e-14));
  CHECK_THROWS_WITH_AS(ops::kl_div(Tensor::ones({2, 3}), Tensor::ones({3, 2})),
                       doctest::Contains("must have the same shape"), engine::Error);
}
