// Reductions: hand-computed sums, means and maxima (with ties), gradients by finite differences
// (f64) on contiguous and non-contiguous inputs, empty dimensions, and thread-count independence.
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>

#include "engine/autograd.h"
#include "engine/gradcheck.h"
#include "engine/rng.h"
#include "ops/reduce.h"
#include "support/op_testing.h"

using engine::Dtype;
using engine::Generator;
using engine::Shape;
using engine::Tensor;
using op_testing::check_close;
using op_testing::check_gradients;
using op_testing::leaf;


TEST_CASE("sum and mean over dims match hand-computed values") {
  for (Dtype dtype : {Dtype::f32, Dtype::f64}) {
    const Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}, dtype);
    CHECK(ops::sum(x).shape() == Shape{});
    CHECK(ops::sum(x).item() == 21);
    check_close(ops::sum(x, {0}).to_vector<double>(), {5, 7, 9});
    check_close(ops::sum(x, {-1}).to_vector<double>(), {6, 15});
    CHECK(ops::sum(x, {1}, true).shape() == Shape{2, 1});
    CHECK(ops::sum(x, {0, 1}, true).shape() == Shape{1, 1});
    check_close(ops::mean(x, {0}).to_vector<double>(), {2.5, 3.5, 4.5});
    check_close(ops::mean(x, {1}, true).to_vector<double>(), {2, 5});
    CHECK(ops::mean(x).item() == 3.5);
    // A transposed input: the sums follow the logical layout.
    check_close(ops::sum(x.transpose(0, 1), {1}).to_vector<double>(), {5, 7, 9});
  }
}

TEST_CASE("sum over non-adjacent dims and over size-1 dims") {
  // x[i, j, k] = 100 i + 10 j + k, shape (2, 3, 4).
  std::vector<double> values;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) values.push_back(100 * i + 10 * j + k);
  const Tensor x = Tensor::from_vector(values, {2, 3, 4}, Dtype::f64);
  // Σ over i and k of (100 i + 10 j + k) = 8 * 10 j + 4 * 100 + 2 * 6.
  check_close(ops::sum(x, {0, 2}).to_vector<double>(), {412, 492, 572});
  check_close(ops::sum(x, {2, 0}, true).to_vector<double>(), {412, 492, 572});
  CHECK(ops::sum(x, {2, 0}, true).shape() == Shape{1, 3, 1});
  const Tensor y = Tensor::from_vector({1, 2, 3}, {3, 1}, Dtype::f64);
  check_close(ops::sum(y, {1}).to_vector<double>(), {1, 2, 3});
  check_close(ops::mean(y, {1}, true).to_vector<double>(), {1, 2, 3});
}

TEST_CASE("sum and mean gradients, on contiguous and non-contiguous inputs") {
  Generator gen(11);
  const Tensor x = leaf(Tensor::randn({3, 4, 5}, gen, Dtype::f64));
  // (4, 3, 5) permuted from a contiguous (5, 4, 3): non-contiguous.
  const Tensor p = leaf(Tensor::randn({5, 4, 3}, gen, Dtype::f64).permute({1, 2, 0}));
  REQUIRE(!p.is_contiguous());
  for (const Tensor& input : {x, p}) {
    for (bool keepdim : {false, true}) {
      for (const std::vector<int64_t>& dims : std::vector<std::vector<int64_t>>{{}, {0}, {1}, {-1}, {0, 2}, {0, 1}}) {
        check_gradients([&](const auto& in) { return ops::sum(in[0], dims, keepdim); }, {input});
        check_gradients([&](const auto& in) { return ops::mean(in[0], dims, keepdim); }, {input});
      }
    }
  }
}

TEST_CASE("max returns the first maximum and its index") {
  for (Dtype dtype : {Dtype::f32, Dtype::f64}) {
    const Tensor x = Tensor::from_vector({1, 3, 3, 2, 2, 1}, {2, 3}, dtype);
    Tensor indices;
    check_close(ops::max(x, 1, false, &indices).to_vector<double>(), {3, 2});
    CHECK(indices.dtype() == Dtype::i64);
    CHECK(indices.to_vector<int64_t>() == std::vector<int64_t>{1, 0});
    check_close(ops::max(x, 0, true, &indices).to_vector<double>(), {2, 3, 3});
    CHECK(indices.shape() == Shape{1, 3});
    CHECK(indices.to_vector<int64_t>() == std::vector<int64_t>{1, 0, 0});
  }
  // NaN counts as the maximum, as in PyTorch.
  Tensor nan_index;
  CHECK(std::isnan(ops::max(Tensor::from_vector({1, NAN, 3}, {3}), 0, false, &nan_index).item()));
  CHECK(nan_index.item() == 1);
  // The gradient of a tie goes to the first maximum only.
  const Tensor x = leaf(Tensor::from_vector({1, 3, 3, 2, 2, 1}, {2, 3}, Dtype::f64));
  ops::max(x, 1).backward(Tensor::from_vector({10, 20}, {2}, Dtype::f64));
  check_close(x.grad().to_vector<double>(), {0, 10, 0, 20, 0, 0});
}

TEST_CASE("max gradients along every dim, on a non-contiguous input") {
  Generator gen(12);
  const Tensor x = leaf(Tensor::randn({3, 4, 5}, gen, Dtype::f64));
  const Tensor p = leaf(Tensor::randn({4, 5, 3}, gen, Dtype::f64).permute({2, 0, 1}));  // (3, 4, 5)
  REQUIRE(!p.is_contiguous());
  for (const Tensor& input : {x, p})
    for (int64_t dim : {0, 1, 2, -1})
      for (bool keepdim : {false, true})
        check_gradients([&](const auto& in) { return ops::max(in[0], dim, keepdim); }, {input});
}

TEST_CASE("reductions over empty dimensions") {
  const Tensor empty_rows = Tensor::ones({0, 3});
  CHECK(ops::sum(empty_rows, {0}).to_vector<double>() == std::vector<double>{0, 0, 0});
  CHECK(ops::sum(empty_rows, {1}).shape() == Shape{0});
  CHECK(ops::max(empty_rows, 1).shape() == Shape{0});
  CHECK_THROWS_WITH_AS(ops::max(Tensor::ones({3, 0}), 1),
                       doctest::Contains("max: cannot take the maximum over dimension 1 of size 0 of f32[3, 0] on cpu"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(ops::sum(Tensor::ones({3, 2}), {0, -2}), doctest::Contains("sum: dimension -2 is listed twice"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(ops::mean(Tensor::ones({3, 2}), {2}), doctest::Contains("mean: dimension 2 is out of range"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(ops::sum(Tensor::arange(4)),
                       doctest::Contains("sum: expected a floating tensor (f32 or f64), got i64[4]"), engine::Error);
}

TEST_CASE("large f32 sums are accurate and identical with 1 and 2 threads") {
  Generator gen(13);
  const Tensor x = Tensor::randn({4096, 300}, gen, Dtype::f32);
  const std::vector<float> values = x.to_vector<float>();
  auto results = [&] {
    return std::vector<std::vector<float>>{ops::sum(x).to_vector<float>(), ops::sum(x, {0}).to_vector<float>(),
                                           ops::sum(x, {1}).to_vector<float>(),
                                           ops::mean(x.transpose(0, 1), {1}).to_vector<float>()};
  };
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto one_thread = results();
  omp_set_num_threads(2);
  const auto two_threads = results();
  omp_set_num_threads(threads);
  CHECK(one_thread == two_threads);

  // Against a double reference: both sum in double, in different orders, then round to f32.
  double total = 0.0;
  std::vector<double> columns(300, 0.0);
  for (size_t i = 0; i < values.size(); ++i) {
    total += values[i];
    columns[i % 300] += values[i];
  }
  CHECK(one_thread[0][0] == doctest::Approx(total).epsilon(1e-6));
  for (size_t c = 0; c < 300; ++c) CHECK(one_thread[1][c] == doctest::Approx(columns[c]).epsilon(1e-6));
  for (size_t c = 0; c < 300; ++c) CHECK(one_thread[3][c] == doctest::Approx(columns[c] / 4096).epsilon(1e-6));
}
