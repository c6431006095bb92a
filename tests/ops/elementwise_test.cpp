// Elementwise ops: forward values by hand, gradients by finite differences (f64), broadcasting,
// non-contiguous operands and error messages.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/autograd.h"
#include "engine/gradcheck.h"
#include "engine/rng.h"
#include "ops/elementwise.h"
#include "ops/reference/gelu.h"
#include "support/op_testing.h"

using engine::Dtype;
using engine::Generator;
using engine::Shape;
using engine::Tensor;
using op_testing::check_close;
using op_testing::check_gradients;
using op_testing::leaf;

namespace {

Tensor random_leaf(const Shape& shape, Generator& gen) { return leaf(Tensor::randn(shape, gen, Dtype::f64)); }

// Values in [0.5, 1.5): safe for log, sqrt, rsqrt, pow and as a divisor.
Tensor positive_leaf(const Shape& shape, Generator& gen) {
  engine::NoGradGuard no_grad;
  return leaf(ops::add_scalar(Tensor::rand(shape, gen, Dtype::f64), 0.5));
}

// A (rows, cols) leaf that is the transpose of a contiguous (cols, rows) tensor.
Tensor transposed_leaf(int64_t rows, int64_t cols, Generator& gen) {
  return leaf(Tensor::randn({cols, rows}, gen, Dtype::f64).transpose(0, 1));
}

}  // namespace

TEST_CASE("binary ops broadcast (NumPy rules) and match hand-computed values") {
  for (Dtype dtype : {Dtype::f32, Dtype::f64}) {
    const Tensor a = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}, dtype);
    const Tensor b = Tensor::from_vector({10, 20, 40}, {3}, dtype);
    const Tensor c = Tensor::from_vector({2, 4}, {2, 1}, dtype);
    check_close(ops::add(a, b).to_vector<double>(), {11, 22, 43, 14, 25, 46});
    check_close(ops::sub(a, c).to_vector<double>(), {-1, 0, 1, 0, 1, 2});
    check_close(ops::mul(b, c).to_vector<double>(), {20, 40, 80, 40, 80, 160});
    check_close(ops::div(a, c).to_vector<double>(), {0.5, 1, 1.5, 1, 1.25, 1.5});
    CHECK(ops::mul(b, c).shape() == Shape{2, 3});
    // A 0-d tensor broadcasts against anything.
    check_close((a * Tensor::full({}, 3.0, dtype)).to_vector<double>(), {3, 6, 9, 12, 15, 18});
  }
}

TEST_CASE("binary ops read non-contiguous operands and large broadcasts correctly") {
  Generator gen(1);
  // (300, 200) from a transposed (200, 300) tensor, times a (300, 1) column: large enough to run
  // the threaded strided loop.
  const Tensor base = Tensor::randn({200, 300}, gen, Dtype::f32);
  const Tensor a = base.transpose(0, 1);
  const Tensor column = Tensor::randn({300, 1}, gen, Dtype::f32);
  const std::vector<float> base_values = base.to_vector<float>(), column_values = column.to_vector<float>();
  const std::vector<float> product = ops::mul(a, column).to_vector<float>();
  bool all_equal = true;
  for (int64_t i = 0; i < 300; ++i)
    for (int64_t j = 0; j < 200; ++j)
      all_equal &= product[size_t(i * 200 + j)] == base_values[size_t(j * 300 + i)] * column_values[size_t(i)];
  CHECK(all_equal);
}

TEST_CASE("binary op gradients reduce over broadcast dims, with non-contiguous operands") {
  Generator gen(2);
  // a: (3, 1, 5) narrowed from (3, 1, 7), so non-contiguous; b: (4, 1). out: (3, 4, 5).
  const Tensor a = leaf(Tensor::randn({3, 1, 7}, gen, Dtype::f64).narrow(2, 1, 5));
  const Tensor b = random_leaf({4, 1}, gen);
  const Tensor b_positive = positive_leaf({4, 1}, gen);
  REQUIRE(!a.is_contiguous());
  check_gradients([](const auto& in) { return ops::add(in[0], in[1]); }, {a, b});
  check_gradients([](const auto& in) { return ops::sub(in[0], in[1]); }, {a, b});
  check_gradients([](const auto& in) { return ops::mul(in[0], in[1]); }, {a, b});
  check_gradients([](const auto& in) { return ops::div(in[0], in[1]); }, {a, b_positive});
  // A transposed (4, 5) against a (5) row, in both argument orders.
  const Tensor t = transposed_leaf(4, 5, gen);
  const Tensor row = positive_leaf({5}, gen);
  check_gradients([](const auto& in) { return ops::div(in[1], in[0]); }, {row, t});
  check_gradients([](const auto& in) { return ops::mul(in[0], in[1]); }, {t, row});
  check_gradients([](const auto& in) { return ops::sub(in[1], in[0]); }, {t, row});
  // The same tensor as both operands: both gradients reach it.
  check_gradients([](const auto& in) { return ops::mul(in[0], in[0]); }, {t});
  check_gradients([](const auto& in) { return ops::div(in[0], in[0] + 3.0); }, {row});
}

TEST_CASE("gradient of a bias add is the column sum") {
  const Tensor x = leaf(Tensor::from_vector({1, 2, 3, 4, 5, 6}, {3, 2}, Dtype::f64));
  const Tensor bias = leaf(Tensor::from_vector({0.5, -0.5}, {2}, Dtype::f64));
  ops::add(x, bias).backward(Tensor::from_vector({1, 2, 3, 4, 5, 6}, {3, 2}, Dtype::f64));
  check_close(bias.grad().to_vector<double>(), {9, 12});
  check_close(x.grad().to_vector<double>(), {1, 2, 3, 4, 5, 6});
}

TEST_CASE("unary ops match hand-computed values") {
  for (Dtype dtype : {Dtype::f32, Dtype::f64}) {
    const double tolerance = dtype == Dtype::f32 ? 1e-6 : 1e-12;
    const Tensor x = Tensor::from_vector({0.25, 1.0, 4.0}, {3}, dtype);
    const Tensor s = Tensor::from_vector({-2.0, -0.5, 1.5}, {3}, dtype);
    check_close(ops::add_scalar(x, 1.5).to_vector<double>(), {1.75, 2.5, 5.5}, tolerance);
    check_close(ops::mul_scalar(x, -2.0).to_vector<double>(), {-0.5, -2, -8}, tolerance);
    check_close(ops::pow_scalar(x, 2.0).to_vector<double>(), {0.0625, 1, 16}, tolerance);
    check_close(ops::pow_scalar(x, 1.5).to_vector<double>(), {0.125, 1, 8}, tolerance);
    check_close(ops::neg(s).to_vector<double>(), {2, 0.5, -1.5}, tolerance);
    check_close(ops::exp(s).to_vector<double>(), {std::exp(-2.0), std::exp(-0.5), std::exp(1.5)}, tolerance);
    check_close(ops::log(x).to_vector<double>(), {std::log(0.25), 0, std::log(4.0)}, tolerance);
    check_close(ops::tanh(s).to_vector<double>(), {std::tanh(-2.0), std::tanh(-0.5), std::tanh(1.5)}, tolerance);
    check_close(ops::sqrt(x).to_vector<double>(), {0.5, 1, 2}, tolerance);
    check_close(ops::rsqrt(x).to_vector<double>(), {2, 1, 0.5}, tolerance);
    check_close(ops::relu(s).to_vector<double>(), {0, 0, 1.5}, tolerance);
    // GPT-2's gelu_new: gelu(1) = 0.841192, gelu(-0.5) = -0.154286.
    check_close(ops::gelu(s).to_vector<double>(), {ops::reference::gelu(-2.0), ops::reference::gelu(-0.5), ops::reference::gelu(1.5)},
                tolerance);
    CHECK(ops::gelu(Tensor::full({1}, 1.0, dtype)).item() == doctest::Approx(0.8411920).epsilon(1e-6));
  }
}

TEST_CASE("unary op gradients, on a non-contiguous input") {
  Generator gen(3);
  const Tensor x = transposed_leaf(3, 4, gen);
  REQUIRE(!x.is_contiguous());
  const Tensor positive = leaf(positive_leaf({4, 3}, gen).transpose(0, 1));
  check_gradients([](const auto& in) { return ops::add_scalar(in[0], 0.7); }, {x});
  check_gradients([](const auto& in) { return ops::mul_scalar(in[0], -1.3); }, {x});
  check_gradients([](const auto& in) { return ops::neg(in[0]); }, {x});
  check_gradients([](const auto& in) { return ops::exp(in[0]); }, {x});
  check_gradients([](const auto& in) { return ops::tanh(in[0]); }, {x});
  check_gradients([](const auto& in) { return ops::gelu(in[0]); }, {x});
  check_gradients([](const auto& in) { return ops::relu(in[0]); }, {x});
  check_gradients([](const auto& in) { return ops::pow_scalar(in[0], 2.0); }, {x});
  check_gradients([](const auto& in) { return ops::pow_scalar(in[0], -1.5); }, {positive});
  check_gradients([](const auto& in) { return ops::log(in[0]); }, {positive});
  check_gradients([](const auto& in) { return ops::sqrt(in[0]); }, {positive});
  check_gradients([](const auto& in) { return ops::rsqrt(in[0]); }, {positive});
}

TEST_CASE("f32 and f64 unary ops agree to f32 precision") {
  Generator gen(4);
  const Tensor x64 = Tensor::randn({64, 1000}, gen, Dtype::f64);
  const Tensor x32 = x64.to(Dtype::f32);
  for (auto op : {ops::gelu, ops::tanh, ops::exp}) {
    const std::vector<double> expected = op(x64).to_vector<double>(), actual = op(x32).to_vector<double>();
    double worst = 0;
    for (size_t i = 0; i < expected.size(); ++i)
      worst = std::max(worst, std::abs(actual[i] - expected[i]) / std::max(1.0, std::abs(expected[i])));
    CHECK(worst < 1e-6);
  }
}

TEST_CASE("where and masked_fill select values and route gradients to the chosen operand") {
  for (Dtype condition_type : {Dtype::i64, Dtype::i32, Dtype::f32, Dtype::f64}) {
    const Tensor condition = Tensor::from_vector({1, 0, 2}, {3, 1}, condition_type);  // rows 0 and 2 true
    const Tensor a = Tensor::from_vector({1, 2}, {1, 2}, Dtype::f64);
    const Tensor b = Tensor::from_vector({-1, -2, -3, -4, -5, -6}, {3, 2}, Dtype::f64);
    check_close(ops::where(condition, a, b).to_vector<double>(), {1, 2, -3, -4, 1, 2});
    const Tensor mask = Tensor::from_vector({0, 3}, {2}, condition_type);
    check_close(ops::masked_fill(b, mask, 9.5).to_vector<double>(), {-1, 9.5, -3, 9.5, -5, 9.5});
  }
  Generator gen(5);
  // condition (1, 4), a (3, 1) narrowed from (3, 2) (non-contiguous), b (4, 3) transposed: out (3, 4).
  const Tensor condition = Tensor::from_indices({1, 0, 0, 1}, {1, 4}, Dtype::i32);
  const Tensor a = leaf(Tensor::randn({3, 2}, gen, Dtype::f64).narrow(1, 1, 1));
  const Tensor b = transposed_leaf(3, 4, gen);
  REQUIRE(!a.is_contiguous());
  check_gradients([&](const auto& in) { return ops::where(condition, in[0], in[1]); }, {a, b});
  check_gradients([&](const auto& in) { return ops::masked_fill(in[0], condition, -2.0); }, {b});
}

TEST_CASE("elementwise errors name the op and the tensors") {
  const Tensor a = Tensor::ones({2, 3});
  const Tensor b = Tensor::ones({4});
  CHECK_THROWS_WITH_AS(ops::add(a, b),
                       doctest::Contains("add: shapes do not broadcast together: f32[2, 3] on cpu and f32[4] on cpu"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(ops::mul(a, Tensor::ones({3}, Dtype::f64)),
                       doctest::Contains("mul: dtype mismatch: f32[2, 3] on cpu and f64[3] on cpu"), engine::Error);
  CHECK_THROWS_WITH_AS(ops::exp(Tensor::arange(3)),
                       doctest::Contains("exp: expected a floating tensor (f32 or f64), got i64[3]"), engine::Error);
  CHECK_THROWS_WITH_AS(
      ops::masked_fill(Tensor::ones({3}), Tensor::ones({2, 3}), 0.0),
      doctest::Contains("masked_fill: mask f32[2, 3] on cpu does not broadcast to the shape of x f32[3] on cpu"),
      engine::Error);
  CHECK_THROWS_WITH_AS(ops::where(Tensor::ones({5}), a, a),
                       doctest::Contains("where: shapes do not broadcast together: f32[5] on cpu and f32[2, 3] on cpu"),
                       engine::Error);
}
