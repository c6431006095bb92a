// layer_norm: hand-computed values, kernel 0 (ops/reference/layernorm.h) forward and backward in f64
// and f32, gradcheck (f64) with and without bias on a non-contiguous input, f32 against f64,
// parameter gradients independent of the thread count, errors. residual_layer_norm: kernel 0,
// gradcheck, the same bits as the add and the norm it fuses, errors.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/autograd.h"
#include "engine/gradcheck.h"
#include "engine/rng.h"
#include "ops/elementwise.h"
#include "ops/indexing.h"
#include "ops/layernorm.h"
#include "ops/reference/layernorm.h"

using engine::Dtype;
using engine::Tensor;

namespace {

Tensor leaf(const engine::Shape& shape, engine::Generator& gen, Dtype dtype = Dtype::f64) {
  Tensor t = Tensor::randn(shape, gen, dtype);
  t.requires_grad_();
  return t;
}

// max |got − expected| / max |expected|.
double relative_error(const Tensor& got, const Tensor& expected) {
  const std::vector<double> g = got.to_vector<double>(), e = expected.to_vector<double>();
  REQUIRE(g.size() == e.size());
  double scale = 0.0, worst = 0.0;
  for (double value : e) scale = std::max(scale, std::abs(value));
  for (size_t i = 0; i < e.size(); ++i) worst = std::max(worst, std::abs(g[i] - e[i]) / scale);
  return worst;
}

}  // namespace

TEST_CASE("layer_norm: hand-computed row") {
  // x = [1, 2, 3, 4]: mean 2.5, biased variance 1.25.
  Tensor x = Tensor::from_vector({1, 2, 3, 4}, {1, 4}, Dtype::f64);
  Tensor w = Tensor::from_vector({1, 2, 1, 1}, {4}, Dtype::f64);
  Tensor b = Tensor::from_vector({0, 0, 1, 0}, {4}, Dtype::f64);
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
  const Tensor x64 = Tensor::randn({3, 37, 5}, gen, Dtype::f64).transpose(1, 2);  // (3, 5, 37)
  const Tensor w64 = Tensor::randn({37}, gen, Dtype::f64), b64 = Tensor::randn({37}, gen, Dtype::f64);
  const Tensor dy64 = Tensor::randn({3, 5, 37}, gen, Dtype::f64);
  for (Dtype dtype : {Dtype::f64, Dtype::f32}) {
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
    const double tolerance = dtype == Dtype::f64 ? 1e-12 : 1e-5;
    const ops::reference::LayerNormGradients want = ops::reference::layer_norm_backward(x, w, 1e-5, dy);
    auto check = [&](const Tensor& got, const Tensor& expected, const char* what) {
      CAPTURE(what);
      CHECK(relative_error(got, expected) < tolerance);
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
  Tensor x_t = Tensor::randn({6, 4}, gen, Dtype::f64).transpose(0, 1).detach();  // (4, 6), non-contiguous
  x_t.requires_grad_();
  auto no_bias = engine::gradcheck(
      [](const std::vector<Tensor>& in) { return ops::layer_norm(in[0], in[1], Tensor(), 1e-5); },
      {x_t, leaf({6}, gen)});
  CHECK_MESSAGE(no_bias.ok, no_bias.message);
}

TEST_CASE("layer_norm in f32 agrees with f64") {
  engine::Generator gen(32);
  Tensor x = Tensor::randn({5, 33}, gen, Dtype::f64), w = Tensor::randn({33}, gen, Dtype::f64);
  Tensor b = Tensor::randn({33}, gen, Dtype::f64);
  const std::vector<double> ref = ops::layer_norm(x, w, b, 1e-5).to_vector<double>();
  const std::vector<double> f32 =
      ops::layer_norm(x.to(Dtype::f32), w.to(Dtype::f32), b.to(Dtype::f32), 1e-5).to_vector<double>();
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

TEST_CASE("residual_layer_norm matches its kernel 0 (double), both outputs and every gradient, in f64 and f32") {
  // 4 x 3 rows of 29 channels (not a multiple of a vector), the branch read through a transposed view.
  engine::Generator gen(34);
  const Tensor x64 = Tensor::randn({4, 3, 29}, gen, Dtype::f64);
  const Tensor a64 = Tensor::randn({4, 29, 3}, gen, Dtype::f64).transpose(1, 2);  // (4, 3, 29)
  const Tensor w64 = Tensor::randn({29}, gen, Dtype::f64), b64 = Tensor::randn({29}, gen, Dtype::f64);
  const Tensor dr64 = Tensor::randn({4, 3, 29}, gen, Dtype::f64), dy64 = Tensor::randn({4, 3, 29}, gen, Dtype::f64);
  for (Dtype dtype : {Dtype::f64, Dtype::f32}) {
    CAPTURE(engine::dtype_name(dtype));
    Tensor x = x64.to(dtype).detach(), a = a64.to(dtype).detach(), w = w64.to(dtype).detach();
    Tensor b = b64.to(dtype).detach();
    for (Tensor* t : {&x, &a, &w, &b}) t->requires_grad_();
    const ops::ResidualLayerNorm out = ops::residual_layer_norm(x, a, w, b, 1e-5);
    engine::run_backward({out.residual, out.normed}, {dr64.to(dtype), dy64.to(dtype)});
    // As for layer_norm above; the residual is rounded once more in f32 before it is normalised.
    const double tolerance = dtype == Dtype::f64 ? 1e-12 : 1e-5;
    const ops::reference::ResidualLayerNormOutputs want = ops::reference::residual_layer_norm(x, a, w, b, 1e-5);
    const ops::reference::LayerNormGradients grads =
        ops::reference::residual_layer_norm_backward(x, a, w, 1e-5, dr64.to(dtype), dy64.to(dtype));
    CHECK(relative_error(out.residual, want.residual) < tolerance);
    CHECK(relative_error(out.normed, want.normed) < tolerance);
    CHECK(relative_error(x.grad(), grads.dx) < tolerance);
    CHECK(relative_error(a.grad(), grads.dx) < tolerance);
    CHECK(relative_error(w.grad(), grads.dweight) < tolerance);
    CHECK(relative_error(b.grad(), grads.dbias) < tolerance);
  }
}

TEST_CASE("residual_layer_norm gradients (f64 gradcheck)") {
  engine::Generator gen(35);
  // Both outputs enter the checked function, with different weights, so both gradients are checked.
  auto fused = [](const std::vector<Tensor>& in) {
    const ops::ResidualLayerNorm out =
        ops::residual_layer_norm(in[0], in[1], in[2], in.size() > 3 ? in[3] : Tensor(), 1e-5);
    return ops::concat({out.residual * 0.7, out.normed}, -1);
  };
  auto with_bias = engine::gradcheck(fused, {leaf({3, 2, 7}, gen), leaf({3, 2, 7}, gen), leaf({7}, gen), leaf({7}, gen)});
  CHECK_MESSAGE(with_bias.ok, with_bias.message);
  Tensor x_t = Tensor::randn({5, 4}, gen, Dtype::f64).transpose(0, 1).detach();  // (4, 5), non-contiguous
  x_t.requires_grad_();
  auto no_bias = engine::gradcheck(fused, {x_t, leaf({4, 5}, gen), leaf({5}, gen)});
  CHECK_MESSAGE(no_bias.ok, no_bias.message);
}

TEST_CASE("residual_layer_norm gives the bits of the add and the layer norm it fuses, forward and backward") {
  // f32, with enough rows and channels for the threaded kernels (rows x channels > 2^14); the
  // residual used on, or dropped (autograd then gives the fused backward zeros as its gradient).
  engine::Generator gen(36);
  const Tensor x = Tensor::randn({3, 70, 96}, gen), a = Tensor::randn({3, 70, 96}, gen);
  const Tensor w = Tensor::randn({96}, gen), b = Tensor::randn({96}, gen);
  const Tensor dr = Tensor::randn({3, 70, 96}, gen), dy = Tensor::randn({3, 70, 96}, gen);
  auto run = [&](bool fused, bool residual_used) {
    std::vector<Tensor> leaves{x.clone().detach(), a.clone().detach(), w.clone().detach(), b.clone().detach()};
    for (Tensor& t : leaves) t.requires_grad_();
    Tensor residual, normed;
    if (fused) {
      const ops::ResidualLayerNorm out = ops::residual_layer_norm(leaves[0], leaves[1], leaves[2], leaves[3], 1e-5);
      residual = out.residual;
      normed = out.normed;
    } else {
      residual = leaves[0] + leaves[1];
      normed = ops::layer_norm(residual, leaves[2], leaves[3], 1e-5);
    }
    if (residual_used) engine::run_backward({residual, normed}, {dr, dy});
    else normed.backward(dy);
    std::vector<std::vector<float>> values{residual.to_vector<float>(), normed.to_vector<float>()};
    for (const Tensor& t : leaves) values.push_back(t.grad().to_vector<float>());
    return values;
  };
  CHECK(run(true, true) == run(false, true));
  CHECK(run(true, false) == run(false, false));
}

TEST_CASE("residual_layer_norm errors name the shapes") {
  CHECK_THROWS_WITH_AS(ops::residual_layer_norm(Tensor::ones({2, 4}), Tensor::ones({2, 3}), Tensor::ones({4}),
                                                Tensor(), 1e-5),
                       doctest::Contains("branch f32[2, 3] on cpu must have the shape of the residual stream"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(ops::residual_layer_norm(Tensor::ones({2, 4}), Tensor::ones({2, 4}), Tensor::ones({3}),
                                                Tensor(), 1e-5),
                       doctest::Contains("residual_layer_norm: weight f32[3] on cpu must be (4)"), engine::Error);
}
