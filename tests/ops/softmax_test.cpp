// Softmax and log-softmax: hand-computed values, stability for large-magnitude inputs, every
// dimension (the last-dim fast path and the strided path), gradients by finite differences (f64).
#include <doctest/doctest.h>

#include <cmath>

#include "engine/autograd.h"
#include "engine/gradcheck.h"
#include "engine/rng.h"
#include "ops/reference/softmax.h"
#include "ops/softmax.h"
#include "support/op_testing.h"

using engine::Dtype;
using engine::Generator;
using engine::Shape;
using engine::Tensor;
using op_testing::check_close;
using op_testing::check_gradients;
using op_testing::leaf;

TEST_CASE("softmax and log_softmax match hand-computed values") {
  for (Dtype dtype : {Dtype::f32, Dtype::f64}) {
    const double tolerance = dtype == Dtype::f32 ? 1e-6 : 1e-12;
    const Tensor x = Tensor::from_vector({1, 2, 3, 0, 0, 0}, {2, 3}, dtype);
    const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
    check_close(ops::softmax(x, 1).to_vector<double>(),
                {std::exp(1.0) / z, std::exp(2.0) / z, std::exp(3.0) / z, 1.0 / 3, 1.0 / 3, 1.0 / 3}, tolerance);
    check_close(ops::log_softmax(x, -1).to_vector<double>(),
                {1 - std::log(z), 2 - std::log(z), 3 - std::log(z), -std::log(3.0), -std::log(3.0), -std::log(3.0)},
                tolerance);
    // Along dim 0: each column of two.
    const double e1 = 1 / (1 + std::exp(-1.0)), e2 = 1 / (1 + std::exp(-2.0)), e3 = 1 / (1 + std::exp(-3.0));
    check_close(ops::softmax(x, 0).to_vector<double>(), {e1, e2, e3, 1 - e1, 1 - e2, 1 - e3}, tolerance);
  }
}

TEST_CASE("softmax is stable for inputs of magnitude 1e4") {
  for (Dtype dtype : {Dtype::f32, Dtype::f64}) {
    const Tensor x = Tensor::from_vector({1e4, -1e4, 0, 1e4}, {4}, dtype);
    check_close(ops::softmax(x, 0).to_vector<double>(), {0.5, 0, 0, 0.5}, 1e-6);
    const double log_half = std::log(0.5);
    check_close(ops::log_softmax(x, 0).to_vector<double>(), {log_half, -2e4 + log_half, -1e4 + log_half, log_half},
                1e-6);
    // The same along a strided dimension.
    check_close(ops::log_softmax(x.view({4, 1}).expand({4, 3}), 0).to_vector<double>(),
                {log_half, log_half, log_half, -2e4 + log_half, -2e4 + log_half, -2e4 + log_half, -1e4 + log_half,
                 -1e4 + log_half, -1e4 + log_half, log_half, log_half, log_half},
                1e-6);
  }
}

TEST_CASE("softmax along every dim matches its kernel 0 (double) in f32") {
  Generator gen(21);
  // Wide enough that rows and column blocks run on several threads.
  const Shape shape{6, 70, 90};
  const Tensor x64 = Tensor::randn(shape, gen, Dtype::f64);
  const Tensor x32 = x64.to(Dtype::f32);
  for (int64_t dim : {0, 1, 2})
    for (bool log : {false, true}) {
      const Tensor y = log ? ops::log_softmax(x32, dim) : ops::softmax(x32, dim);
      // Kernel 0 (ops/reference/softmax.h) of the unrounded f64 values.
      const Tensor reference = log ? ops::reference::log_softmax(x64, dim) : ops::reference::softmax(x64, dim);
      const std::vector<double> actual = y.to_vector<double>(), expected = reference.to_vector<double>();
      double worst = 0;
      for (size_t i = 0; i < expected.size(); ++i)
        worst = std::max(worst, std::abs(actual[i] - expected[i]) / std::max(1.0, std::abs(expected[i])));
      CHECK(worst < 1e-6);
    }
}

TEST_CASE("softmax and log_softmax gradients along every dim, on a non-contiguous input") {
  Generator gen(22);
  const Tensor x = leaf(Tensor::randn({3, 4, 5}, gen, Dtype::f64));
  const Tensor p = leaf(Tensor::randn({5, 3, 4}, gen, Dtype::f64).permute({1, 2, 0}));  // (3, 4, 5)
  REQUIRE(!p.is_contiguous());
  for (const Tensor& input : {x, p})
    for (int64_t dim : {0, 1, -1}) {
      check_gradients([&](const auto& in) { return ops::softmax(in[0], dim); }, {input});
      check_gradients([&](const auto& in) { return ops::log_softmax(in[0], dim); }, {input});
    }
}

TEST_CASE("softmax over a zero-size dim is an error; other empty tensors pass through") {
  CHECK_THROWS_WITH_AS(ops::softmax(Tensor::ones({2, 0}), 1),
                       doctest::Contains("softmax: dimension 1 of f32[2, 0] on cpu has size 0"), engine::Error);
  CHECK_THROWS_WITH_AS(ops::log_softmax(Tensor::ones({0, 3}), 0),
                       doctest::Contains("log_softmax: dimension 0 of f32[0, 3] on cpu has size 0"), engine::Error);
  CHECK(ops::softmax(Tensor::ones({0, 3}), 1).shape() == Shape{0, 3});
  CHECK_THROWS_WITH_AS(ops::softmax(Tensor::arange(3), 0),
                       doctest::Contains("softmax: expected a floating tensor (f32 or f64), got i64[3]"),
                       engine::Error);
}

TEST_CASE("softmax is stable when the largest value is the last of its row or column") {
  // The row maximum must include the last element: with it skipped, exp(1e4 - max) overflows. Every
  // length from 2 to 40 covers the vector body and each tail of the row kernels; the transposed copy
  // runs the column kernel.
  for (Dtype dtype : {Dtype::f32, Dtype::f64}) {
    for (int64_t n = 2; n <= 40; ++n) {
      CAPTURE(n);
      std::vector<double> row(size_t(n), -1e4);
      row.back() = 1e4;
      std::vector<double> expected(size_t(n), 0.0), expected_log(size_t(n), -2e4);
      expected.back() = 1.0;
      expected_log.back() = 0.0;
      const Tensor x = Tensor::from_vector(row, {1, n}, dtype);
      check_close(ops::softmax(x, 1).to_vector<double>(), expected, 1e-6);
      check_close(ops::log_softmax(x, 1).to_vector<double>(), expected_log, 1e-6);
      const Tensor column = x.transpose(0, 1).contiguous();  // (n, 1): the softmax dim is not the last
      check_close(ops::softmax(column.expand({n, 3}), 0).select(1, 2).to_vector<double>(), expected, 1e-6);
      check_close(ops::log_softmax(column.expand({n, 3}), 0).select(1, 0).to_vector<double>(), expected_log, 1e-6);
    }
  }
}
