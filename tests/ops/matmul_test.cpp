// matmul and linear: against their kernel 0, a naive triple loop (f32), hand-computed values, gradcheck (f64) on
// broadcast, transposed and non-contiguous operands, and error messages.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "common/grad_in_place_checks.h"
#include "engine/autograd.h"
#include "engine/gradcheck.h"
#include "engine/rng.h"
#include "ops/matmul.h"
#include "ops/reference/matmul.h"

using engine::Dtype;
using engine::Shape;
using engine::Tensor;

namespace {

// Largest |got - want| relative to the largest |want|.
double relative_error(const std::vector<double>& got, const std::vector<double>& want) {
  double max_diff = 0, max_ref = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(got[i] - want[i]));
    max_ref = std::max(max_ref, std::abs(want[i]));
  }
  return max_diff / max_ref;
}

// The op against its kernel 0, the triple loop in double (ops/reference/matmul.h).
void check_against_naive(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const Tensor want = ops::reference::matmul(a, b, ta, tb);
  const Tensor out = ops::matmul(a, b, ta, tb);
  REQUIRE(out.shape() == want.shape());
  // f32 products of K terms of magnitude ~1 agree with a double reference to ~1e-6 relative.
  CHECK(relative_error(out.to_vector<double>(), want.to_vector<double>()) < 1e-5);
}

Tensor leaf(const Shape& shape, engine::Generator& gen, Dtype dtype = Dtype::f64) {
  Tensor t = Tensor::randn(shape, gen, dtype);
  t.requires_grad_();
  return t;
}

// A non-contiguous leaf: the transpose of a fresh tensor, marked as requiring grad.
Tensor transposed_leaf(const Shape& stored_shape, engine::Generator& gen) {
  Tensor t = Tensor::randn(stored_shape, gen, Dtype::f64).transpose(-1, -2).detach();
  t.requires_grad_();
  return t;
}

}  // namespace

TEST_CASE("matmul matches a naive triple loop in f32 for odd sizes and every transpose") {
  engine::Generator gen(1);
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      CAPTURE(ta);
      CAPTURE(tb);
      Tensor a = Tensor::randn(ta ? Shape{53, 37} : Shape{37, 53}, gen);
      Tensor b = Tensor::randn(tb ? Shape{19, 53} : Shape{53, 19}, gen);
      check_against_naive(a, b, ta, tb);
    }
  // Large enough for the GEMM to run threaded, over several tiles of C with partial edge tiles.
  check_against_naive(Tensor::randn({130, 257}, gen), Tensor::randn({257, 129}, gen), false, false);
  check_against_naive(Tensor::randn({301, 150}, gen), Tensor::randn({150, 517}, gen), false, false);
  check_against_naive(Tensor::randn({150, 301}, gen), Tensor::randn({517, 150}, gen), true, true);
}

TEST_CASE("threaded f32 GEMMs give the same bits on 1 and 2 threads") {
  engine::Generator gen(5);
  const Tensor a = Tensor::randn({300, 700}, gen), b = Tensor::randn({700, 600}, gen);
  auto products = [&] {
    return std::vector<std::vector<float>>{ops::matmul(a, b).to_vector<float>(),
                                           ops::matmul(a, a, true, false).to_vector<float>()};
  };
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto one_thread = products();
  omp_set_num_threads(2);
  const auto two_threads = products();
  omp_set_num_threads(threads);
  CHECK(one_thread == two_threads);
}

TEST_CASE("matmul broadcasts batch dims, folds a shared 2-D b, and reads strided views") {
  engine::Generator gen(2);
  check_against_naive(Tensor::randn({2, 1, 5, 3}, gen), Tensor::randn({4, 3, 6}, gen), false, false);
  check_against_naive(Tensor::randn({3, 7, 5}, gen), Tensor::randn({5, 4}, gen), false, false);
  check_against_naive(Tensor::randn({3, 7, 5}, gen), Tensor::randn({4, 5}, gen), false, true);
  check_against_naive(Tensor::randn({5, 7}, gen), Tensor::randn({6, 5, 4}, gen), true, false);
  // Transposed and narrowed views, a permuted batch, and an expanded (stride-0) batch.
  Tensor base = Tensor::randn({4, 9, 6}, gen);
  check_against_naive(base.transpose(1, 2), Tensor::randn({9, 5}, gen), false, false);
  check_against_naive(base.narrow(2, 1, 4), Tensor::randn({4, 4, 5}, gen).transpose(1, 2), false, true);
  check_against_naive(base.permute({2, 0, 1}).narrow(2, 2, 5), Tensor::randn({6, 5, 3}, gen), false, false);
  check_against_naive(Tensor::randn({1, 3, 4}, gen).expand({5, 3, 4}), Tensor::randn({5, 4, 2}, gen), false, false);
  // Many small products: parallel over the batch.
  check_against_naive(Tensor::randn({64, 8, 16}, gen), Tensor::randn({64, 16, 8}, gen), false, false);
}

TEST_CASE("matmul of hand-computed 2x2 matrices") {
  Tensor a = Tensor::from_vector({1, 2, 3, 4}, {2, 2}, Dtype::f64);
  Tensor b = Tensor::from_vector({5, 6, 7, 8}, {2, 2}, Dtype::f64);
  CHECK(ops::matmul(a, b).to_vector<double>() == std::vector<double>{19, 22, 43, 50});
  CHECK(ops::matmul(a, b, true, false).to_vector<double>() == std::vector<double>{26, 30, 38, 44});
  CHECK(ops::matmul(a, b, false, true).to_vector<double>() == std::vector<double>{17, 23, 39, 53});
}

TEST_CASE("matmul gradients (f64 gradcheck)") {
  engine::Generator gen(3);
  auto check = [](const std::vector<Tensor>& inputs, bool ta, bool tb) {
    auto result = engine::gradcheck([&](const std::vector<Tensor>& in) { return ops::matmul(in[0], in[1], ta, tb); },
                                    inputs);
    CHECK_MESSAGE(result.ok, result.message);
  };
  check({leaf({3, 4}, gen), leaf({4, 5}, gen)}, false, false);
  check({leaf({4, 3}, gen), leaf({5, 4}, gen)}, true, true);
  check({leaf({2, 3, 4}, gen), leaf({4, 5}, gen)}, false, false);      // shared 2-D b, folded
  check({leaf({2, 3, 4}, gen), leaf({5, 4}, gen)}, false, true);
  check({leaf({2, 4, 3}, gen), leaf({4, 5}, gen)}, true, false);       // shared b, not folded
  check({leaf({2, 1, 3, 4}, gen), leaf({3, 4, 2}, gen)}, false, false);  // both broadcast
  check({leaf({3, 4}, gen), leaf({2, 4, 5}, gen)}, false, false);      // shared 2-D a
  check({transposed_leaf({4, 3}, gen), transposed_leaf({2, 5, 4}, gen)}, false, false);  // non-contiguous
}

TEST_CASE("matmul errors name the operands") {
  Tensor a = Tensor::ones({2, 3}), b = Tensor::ones({4, 5});
  CHECK_THROWS_WITH_AS(ops::matmul(a, b), doctest::Contains("inner dimensions differ: a f32[2, 3]"), engine::Error);
  CHECK_THROWS_WITH_AS(ops::matmul(Tensor::ones({3}), b), doctest::Contains("at least 2 dims"), engine::Error);
  CHECK_THROWS_WITH_AS(ops::matmul(Tensor::ones({2, 3}), Tensor::ones({3, 2}, Dtype::f64)),
                       doctest::Contains("matmul"), engine::Error);
  CHECK_THROWS_WITH_AS(ops::matmul(Tensor::ones({2, 2, 3}), Tensor::ones({3, 3, 2})),
                       doctest::Contains("matmul"), engine::Error);
}

TEST_CASE("linear: hand-computed values with bias and GELU") {
  Tensor x = Tensor::from_vector({1, 2, -1, 0.5}, {2, 2}, Dtype::f64);
  Tensor w = Tensor::from_vector({1, 0, 0.5, -1, 2, 1}, {3, 2}, Dtype::f64);
  Tensor bias = Tensor::from_vector({0.1, 0.2, -0.3}, {3}, Dtype::f64);
  // x·wᵀ + b = [[1.1, -1.3, 3.7], [-0.9, -0.8, -1.8]]
  const std::vector<double> pre{1.1, -1.3, 3.7, -0.9, -0.8, -1.8};
  const std::vector<double> y = ops::linear(x, w, bias).to_vector<double>();
  for (size_t i = 0; i < pre.size(); ++i) CHECK(y[i] == doctest::Approx(pre[i]).epsilon(1e-14));
  const std::vector<double> g = ops::linear(x, w, bias, ops::Activation::gelu).to_vector<double>();
  for (size_t i = 0; i < pre.size(); ++i) {
    const double v = pre[i];
    const double want = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    CHECK(g[i] == doctest::Approx(want).epsilon(1e-14));
  }
  CHECK(ops::linear(x, w).to_vector<double>()[1] == doctest::Approx(-1.5));
}

TEST_CASE("linear gradients (f64 gradcheck) with and without bias and GELU") {
  engine::Generator gen(4);
  for (auto act : {ops::Activation::none, ops::Activation::gelu}) {
    auto with_bias = engine::gradcheck(
        [&](const std::vector<Tensor>& in) { return ops::linear(in[0], in[1], in[2], act); },
        {leaf({2, 3, 5}, gen), leaf({4, 5}, gen), leaf({4}, gen)});
    CHECK_MESSAGE(with_bias.ok, with_bias.message);
    // Non-contiguous input and weight (transposed views), no bias.
    auto no_bias = engine::gradcheck([&](const std::vector<Tensor>& in) { return ops::linear(in[0], in[1], Tensor(), act); },
                                     {transposed_leaf({5, 3}, gen), transposed_leaf({5, 4}, gen)});
    CHECK_MESSAGE(no_bias.ok, no_bias.message);
  }
}

TEST_CASE("linear's GELU in f32 agrees with f64, forward and derivative") {
  // y = gelu(x · 1): the pre-activation is x exactly, and dx = gelu'(x) for dy = 1.
  std::vector<double> xs;
  for (double x = -12.0; x <= 12.0; x += 0.0137) xs.push_back(float(x));
  const int64_t n = int64_t(xs.size());
  Tensor x = Tensor::from_vector(xs, {n, 1}, Dtype::f32).requires_grad_();
  Tensor y = ops::linear(x, Tensor::ones({1, 1}), Tensor(), ops::Activation::gelu);
  y.backward(Tensor::ones({n, 1}));
  const std::vector<double> got = y.to_vector<double>(), got_grad = x.grad().to_vector<double>();
  const double s = std::sqrt(2 / M_PI), c = 0.044715;
  for (int64_t i = 0; i < n; ++i) {
    // 0.5·(1 + tanh z) as σ(2z): in double too, 1 + tanh z cancels to 0 below x ≈ -6.
    const double v = xs[size_t(i)], sigma = 1 / (1 + std::exp(-2 * s * (v + c * v * v * v)));
    const double want = v * sigma;
    const double want_grad = sigma + 2 * v * sigma * (1 - sigma) * s * (1 + 3 * c * v * v);
    CAPTURE(v);
    // gelu relative to itself (x·σ(2z) does not cancel; e^(−2z) carries z's f32 rounding times |2z|,
    // up to 140 here); gelu', whose two terms (~0.3 each) cancel near x = -0.75, relative to their scale.
    CHECK(std::abs(got[size_t(i)] - want) <= 1e-5 * std::abs(want) + 1e-37);
    CHECK(std::abs(got_grad[size_t(i)] - want_grad) <= 2e-6 * (std::abs(want_grad) + 0.05));
  }
}

TEST_CASE("linear in f32 matches matmul plus bias; errors") {
  engine::Generator gen(5);
  Tensor x = Tensor::randn({3, 11, 37}, gen), w = Tensor::randn({19, 37}, gen), b = Tensor::randn({19}, gen);
  std::vector<double> want = ops::reference::matmul(x, w, false, true).to_vector<double>();
  const std::vector<double> bias = b.to_vector<double>();
  for (size_t i = 0; i < want.size(); ++i) want[i] += bias[i % 19];
  const Tensor y = ops::linear(x, w, b);
  CHECK(y.shape() == Shape{3, 11, 19});
  CHECK(relative_error(y.to_vector<double>(), want) < 1e-5);
  CHECK_THROWS_WITH_AS(ops::linear(x, Tensor::ones({19, 36})), doctest::Contains("in_features = 36"), engine::Error);
  CHECK_THROWS_WITH_AS(ops::linear(x, w, Tensor::ones({18})), doctest::Contains("bias f32[18]"), engine::Error);
}

TEST_CASE("linear's weight gradient accumulated in place on the CPU matches the engine's add") {
  engine::Generator gen(43);
  for (Dtype dtype : {Dtype::f32, Dtype::f64}) {
    CAPTURE(engine::dtype_name(dtype));
    grad_in_place_checks::check_linear_weight_gradient_in_place(gen, engine::Device::cpu(), dtype);
  }
}
