// layer_norm: hand-computed values, kernel 0 (ops/reference/layernorm.h) forward and backward in f64
// and f32, gradcheck (f64) with and without bias on a non-contiguous input, f32 against f64,
// parameter gradients independent of the thread count, errors.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/autograd.h"
#include "engine/gradcheck.h"
#include "engine/rng.h"
#include "ops/layernorm.h"
#include "ops/reference/layernorm.h"

using engine::DType;
using engine::Tensor;

namespace {

Tensor leaf(const engine::Shape& shape, engine::Generator& gen, DType dtype = DType::f64) {
  Tensor t = Tensor::randn(shape, gen, dtype);
  t.requires_grad_();
  return t;
}

}  // namespace

TEST_CASE("layer_norm: hand-computed row") {
  // x = [1, 2, 3, 4]: mean 2.5, biased variance 1.25.
  Tensor x = Tensor::from_vector({1, 2, 3, 4}, {1, 4}, DType::f64);
  Tensor w = Tensor::from_vector({1, 2, 1, 1}, {4}, DType::f64);
  Tensor b = Tensor::from_vector({0, 0, 1, 0}, {4}, DType::f64);
  const double eps = 1e-5, s = 1 / std::sqrt(1.25 + eps);
  const std::vector<double> want{-1.5 * s, -0.5 * s * 2, 0.5 * s + 1, 1.5 * s};
  const std::vector<double> got = ops::layer_norm(x, w, b, eps).to_vector<double>();
  for (size_t i = 0; i < 4; ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-14));
  const std::vector<double> no_bias = ops::layer_norm(x, w, Tensor(), eps).to_vector<double>();
  CHECK(no_bias[2] == doctest::Approx(0.5 * s).epsilon(1e-14));
}

TEST_CASE("layer_norm matches its kernel 0 (double), forward and every gradient, in f64 and f32") {
  // 3 x 5 rows of 37 channels (not a multiple of a vector), x read through a transposed view.
  engine::Generator gen(30);
  const Tensor x64 = Tensor::randn({3, 37, 5}, gen, DType::f64).transpose(1, 2);  // (3, 5, 37)
  const Tensor w64 = Tensor::randn({37}, gen, DType::f64), b64 = Tensor::randn({37}, gen, DType::f64);
  const Tensor dy64 = Tensor::randn({3, 5, 37}, gen, DType::f64);
  for (DType dtype : {DType::f64, DType::f32}) {
    CAPTURE(engine::dtype_name(dtype));
    Tensor x = x64.to(dtype).detach(), w = w64.to(dtype).detach(), b = b64.to(dtype).detach();
    const Tensor dy = dy64.to(dtype);
    x.requires_grad_();
    w.requires_grad_();
    b.requires_grad_();
    const Tensor y = ops::layer_norm(x, w, b, 1e-5);
    y.backward(dy);
    // Kernel 0 sees the inputs the op saw (rounded to f32 in the f32 case). f64: the same sums in
    // another order. f32: statistics in double, then a few f32 roundings per element (~6e-8 each);
    // the parameter gradients sum 15 rows. Relative to each tensor's largest element.
    const double tolerance = dtype == DType::f64 ? 1e-12 : 1e-5;
    const ops::reference::LayerNormGradients want = ops::reference::layer_norm_backward(x, w, 1e-5, dy);
    auto check = [&](const Tensor& got, const Tensor& expected, const char* what) {
      CAPTURE(what);
      const std::vector<double> g = got.to_vector<double>(), e = expected.to_vector<double>();
      REQUIRE(g.size() == e.size());
      double scale = 0.0, worst = 0.0;
      for (double value : e) scale = std::max(scale, std::abs(value));
      for (size_t i = 0; i < e.size(); ++i) worst = std::max(worst, std::abs(g[i] - e[i]) / scale);
      CHECK(worst < tolerance);
    };
    check(y, ops::reference::layer_norm(x, w, b, 1e-5), "y");
    check(x.grad(), want.dx, "dx");
    check(w.grad(), want.dweight, "dweight");
    check(b.grad(), want.dbias, "dbias");
  }
}

TEST_CASE("layer_norm gradients (f64 gradcheck)") {
  engine::Generator gen(31);
  auto with_bias = engine::gradcheck(
      [](const std::vector<Tensor>& in) { return ops::layer_norm(in[0], in[1], in[2], 1e-5); },
      {leaf({2, 3, 7}, gen), leaf({7}, gen), leaf({7}, gen)});
  CHECK_MESSAGE(with_bias.ok, with_bias.message);
  Tensor x_t = Tensor::randn({6, 4}, gen, DType::f64).transpose(0, 1).detach();  // (4, 6), non-contiguous
  x_t.requires_grad_();
  auto no_bias = engine::gradcheck(
      [](const std::vector<Tensor>& in) { return ops::layer_norm(in[0], in[1], Tensor(), 1e-5); },
      {x_t, leaf({6}, gen)});
  CHECK_MESSAGE(no_bias.ok, no_bias.message);
}

TEST_CASE("layer_norm in f32 agrees with f64") {
  engine::Generator gen(32);
  Tensor x = Tensor::randn({5, 33}, gen, DType::f64), w = Tensor::randn({33}, gen, DType::f64);
  Tensor b = Tensor::randn({33}, gen, DType::f64);
  const std::vector<double> ref = ops::layer_norm(x, w, b, 1e-5).to_vector<double>();
  const std::vector<double> f32 =
      ops::layer_norm(x.to(DType::f32), w.to(DType::f32), b.to(DType::f32), 1e-5).to_vector<double>();
  for (size_t i = 0; i < ref.size(); ++i) CHECK(f32[i] == doctest::Approx(ref[i]).epsilon(1e-5).scale(1.0));
}

TEST_CASE("layer_norm gradients do not depend on the thread count") {
  engine::Generator gen(33);
  const Tensor x = Tensor::randn({300, 130}, gen), w = Tensor::randn({130}, gen), b = Tensor::randn({130}, gen);
  const Tensor seed = Tensor::randn({300, 130}, gen);
  const int previous_threads = omp_get_max_threads();
  auto grads = [&](int threads) {
    omp_set_num_threads(threads);
    Tensor xl = x.clone().detach(), wl = w.clone().detach(), bl = b.clone().detach();
    xl.requires_grad_();
    wl.requires_grad_();
    bl.requires_grad_();
    ops::layer_norm(xl, wl, bl, 1e-5).backward(seed);
    return std::vector<std::vector<float>>{xl.grad().to_vector<float>(), wl.grad().to_vector<float>(),
                                           bl.grad().to_vector<float>()};
  };
  const auto one = grads(1), two = grads(2);
  omp_set_num_threads(previous_threads);
  CHECK(one == two);
}

TEST_CASE("layer_norm errors name the shapes") {
  CHECK_THROWS_WITH_AS(ops::layer_norm(Tensor::ones({2, 4}), Tensor::ones({3}), Tensor(), 1e-5),
                       doctest::Contains("weight f32[3] on cpu must be (4)"), engine::Error);
  CHECK_THROWS_WITH_AS(ops::layer_norm(Tensor::ones({2, 4}), Tensor::ones({4}), Tensor::ones({5}), 1e-5),
                       doctest::Contains("bias f32[5]"), engine::Error);
}
