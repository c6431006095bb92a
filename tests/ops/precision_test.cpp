// The bf16 precision setting (ops/precision.h) in matmul and linear on the CPU: products of f32
// tensors equal a double reference of their bf16-rounded operands (the f32 sums' error only), on
// every path (a single GEMM, a batch folded into one, a batch of small products, linear with bias and
// GELU), forward and backward; the backward runs in the precision of its forward; f64 is unaffected.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/autograd.h"
#include "engine/rng.h"
#include "ops/bf16_round.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/precision.h"
#include "ops/reduce.h"

using engine::Dtype;
using engine::Shape;
using engine::Tensor;

namespace {

// t rounded to bf16, as f64 (the reference's operand).
Tensor rounded_f64(const Tensor& t) {
  std::vector<double> values;
  for (float x : t.contiguous().to_vector<float>()) values.push_back(bf16_round(x));
  return Tensor::from_vector(values, t.shape(), Dtype::f64);
}

// Largest |got - want| over the largest |want|.
double relative_error(const Tensor& got, const Tensor& want) {
  const std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  REQUIRE(g.size() == w.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    diff = std::max(diff, std::abs(g[i] - w[i]));
    scale = std::max(scale, std::abs(w[i]));
  }
  return diff / scale;
}

// f32 sums of K products of magnitude ~1 (K <= 600 here) stay within ~1e-6 of the exact sum relative
// to the largest output; a product of unrounded operands misses it by bf16's ~4e-3 relative.
constexpr double kF32SumTolerance = 1e-5;

}  // namespace

TEST_CASE("matmul in bf16 equals a double reference of the rounded operands, on every path") {
  engine::Generator gen(41);
  ops::PrecisionScope bf16(ops::Precision::bf16);
  struct Case {
    Shape a, b;
    bool ta, tb;
  };
  for (const Case& c : {Case{{37, 53}, {53, 19}, false, false}, Case{{53, 37}, {19, 53}, true, true},
                        Case{{130, 257}, {129, 257}, false, true},   // threaded
                        Case{{3, 40, 65}, {65, 70}, false, false},  // a batch folded into one GEMM
                        Case{{4, 33, 17}, {4, 33, 21}, true, false}}) {  // a batch of small products
    CAPTURE(c.a.size());
    const Tensor a = Tensor::randn(c.a, gen), b = Tensor::randn(c.b, gen);
    const Tensor want = ops::matmul(rounded_f64(a), rounded_f64(b), c.ta, c.tb);
    CHECK(relative_error(ops::matmul(a, b, c.ta, c.tb), want) < kF32SumTolerance);
  }
}

TEST_CASE("linear in bf16 rounds the GEMM's operands only: bias and GELU stay f32, forward and backward") {
  engine::Generator gen(42);
  const int64_t R = 70, I = 300, O = 90;
  Tensor x = Tensor::randn({2, R / 2, I}, gen), weight = Tensor::randn({O, I}, gen), bias = Tensor::randn({O}, gen);
  const Tensor seed = Tensor::randn({2, R / 2, O}, gen);
  x.requires_grad_();
  weight.requires_grad_();
  bias.requires_grad_();
  Tensor y, y_gelu;
  {
    ops::PrecisionScope bf16(ops::Precision::bf16);
    y = ops::linear(x, weight, bias);
    y_gelu = ops::linear(x.detach(), weight.detach(), bias.detach(), ops::Activation::gelu);
  }
  // The backward runs after the scope has ended: in its forward's precision all the same.
  ops::sum(ops::mul(y, seed)).backward();

  // Reference in f64: pre = round(x)·round(W)ᵀ + b, y = gelu(pre); with dy = seed (f32),
  // dx = round(dy)·round(W), dW = round(dy)ᵀ·round(x), db = Σ dy.
  const Tensor x64 = rounded_f64(x.detach().reshape({R, I})), w64 = rounded_f64(weight.detach());
  const Tensor pre = ops::add(ops::matmul(x64, w64, false, true), bias.detach().to(Dtype::f64));
  CHECK(relative_error(y.detach().reshape({R, O}), pre) < kF32SumTolerance);
  CHECK(relative_error(y_gelu.reshape({R, O}), ops::gelu(pre)) < kF32SumTolerance);
  const Tensor dy = rounded_f64(seed.reshape({R, O}));
  CHECK(relative_error(x.grad().reshape({R, I}), ops::matmul(dy, w64)) < kF32SumTolerance);
  CHECK(relative_error(weight.grad(), ops::matmul(dy, x64, true, false)) < kF32SumTolerance);
  CHECK(relative_error(bias.grad(), ops::sum(seed.reshape({R, O}).to(Dtype::f64), {0})) < kF32SumTolerance);
}

TEST_CASE("the bf16 setting leaves f64 products and fp32 runs alone") {
  engine::Generator gen(43);
  const Tensor a = Tensor::randn({40, 60}, gen, Dtype::f64), b = Tensor::randn({60, 30}, gen, Dtype::f64);
  const std::vector<double> fp32 = ops::matmul(a, b).to_vector<double>();
  {
    ops::PrecisionScope bf16(ops::Precision::bf16);
    CHECK(ops::matmul(a, b).to_vector<double>() == fp32);
  }
  CHECK(ops::precision() == ops::Precision::fp32);
  const Tensor a32 = a.to(Dtype::f32), b32 = b.to(Dtype::f32);
  CHECK(relative_error(ops::matmul(a32, b32), ops::matmul(a, b)) < kF32SumTolerance);
}

TEST_CASE("--precision values: fp32 and bf16, anything else named in the error") {
  CHECK(ops::parse_precision("bf16") == ops::Precision::bf16);
  CHECK(ops::parse_precision("fp32") == ops::Precision::fp32);
  CHECK_THROWS_WITH(ops::parse_precision("fp16"), doctest::Contains("--precision fp16"));
  CHECK(std::string(ops::precision_description(ops::Precision::fp32)) == "fp32");
}
