// The fused MLP op: f64 gradcheck on random non-symmetric shapes (contiguous and transposed
// operands, with and without recomputing GELU), bit-for-bit agreement with the two linear ops it
// replaces (forward and every gradient, fp32 and bf16 products), and its error messages.
#include <doctest/doctest.h>

#include <functional>
#include <vector>

#include "engine/autograd.h"
#include "engine/gradcheck.h"
#include "engine/rng.h"
#include "ops/matmul.h"
#include "ops/mlp.h"
#include "ops/precision.h"

using engine::Dtype;
using engine::Shape;
using engine::Tensor;

namespace {

Tensor leaf(const Shape& shape, engine::Generator& gen, Dtype dtype = Dtype::f64) {
  return Tensor::randn(shape, gen, dtype).requires_grad_();
}

// The output and the gradients of every input of f(inputs) for the seed gradient `seed`, computed on
// fresh leaves holding the values of `values`.
std::vector<Tensor> output_and_gradients(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                         const std::vector<Tensor>& values, const Tensor& seed) {
  std::vector<Tensor> leaves;
  for (const Tensor& v : values) leaves.push_back(v.clone().requires_grad_());
  const Tensor out = f(leaves);
  out.backward(seed);
  std::vector<Tensor> results = {out.detach()};
  for (const Tensor& l : leaves) results.push_back(l.grad());
  return results;
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.to_vector<float>() == b.to_vector<float>();
}

}  // namespace

TEST_CASE("mlp gradients (f64 gradcheck), with and without recomputing GELU") {
  engine::Generator gen(21);
  for (bool recompute : {false, true}) {
    CAPTURE(recompute);
    auto mlp = [&](const std::vector<Tensor>& in) { return ops::mlp(in[0], in[1], in[2], in[3], in[4], recompute); };
    // C = 5, F = 7, O = 4: no dimension equal to another, so a swapped operand cannot pass.
    auto plain = engine::gradcheck(mlp, {leaf({2, 3, 5}, gen), leaf({7, 5}, gen), leaf({7}, gen), leaf({4, 7}, gen),
                                         leaf({4}, gen)});
    CHECK_MESSAGE(plain.ok, plain.message);
    // A transposed input (copied to rows) and transposed weight views (copied to the nn.Linear layout).
    auto transposed = [&](const Shape& stored) {
      return Tensor::randn(stored, gen, Dtype::f64).transpose(-1, -2).detach().requires_grad_();
    };
    auto strided = engine::gradcheck(mlp, {transposed({6, 3}), transposed({6, 9}), leaf({9}, gen), transposed({9, 2}),
                                           leaf({2}, gen)});
    CHECK_MESSAGE(strided.ok, strided.message);
  }
}

TEST_CASE("mlp equals linear(gelu) then linear bit for bit on the CPU, forward and backward, fp32 and bf16") {
  engine::Generator gen(22);
  // 111 rows, C = 24, F = 96, O = 24: a GEMM large enough to be split into blocks and threads.
  const std::vector<Tensor> values = {Tensor::randn({3, 37, 24}, gen), Tensor::randn({96, 24}, gen),
                                      Tensor::randn({96}, gen), Tensor::randn({24, 96}, gen), Tensor::randn({24}, gen)};
  const Tensor seed = Tensor::randn({3, 37, 24}, gen);
  auto two_linears = [](const std::vector<Tensor>& in) {
    return ops::linear(ops::linear(in[0], in[1], in[2], ops::Activation::gelu), in[3], in[4]);
  };
  for (ops::Precision precision : {ops::Precision::fp32, ops::Precision::bf16}) {
    CAPTURE(ops::precision_name(precision));
    const ops::PrecisionScope scope(precision);
    const std::vector<Tensor> want = output_and_gradients(two_linears, values, seed);
    for (bool recompute : {false, true}) {
      CAPTURE(recompute);
      const std::vector<Tensor> got = output_and_gradients(
          [&](const std::vector<Tensor>& in) { return ops::mlp(in[0], in[1], in[2], in[3], in[4], recompute); },
          values, seed);
      for (size_t i = 0; i < want.size(); ++i) {
        CAPTURE(i);  // 0: output, then the gradients of x, fc_weight, fc_bias, proj_weight, proj_bias
        CHECK(bitwise_equal(got[i], want[i]));
      }
    }
  }
}

TEST_CASE("mlp names the operand at fault") {
  engine::Generator gen(23);
  const Tensor x = Tensor::randn({2, 5}, gen), fc = Tensor::randn({7, 5}, gen), fc_bias = Tensor::randn({7}, gen);
  const Tensor proj = Tensor::randn({4, 7}, gen), proj_bias = Tensor::randn({4}, gen);
  CHECK_THROWS_WITH_AS(ops::mlp(Tensor::randn({2, 6}, gen), fc, fc_bias, proj, proj_bias),
                       doctest::Contains("does not end in in_features = 5"), engine::Error);
  CHECK_THROWS_WITH_AS(ops::mlp(x, fc, Tensor::randn({4}, gen), proj, proj_bias),
                       doctest::Contains("fc_bias is"), engine::Error);
  CHECK_THROWS_WITH_AS(ops::mlp(x, fc, fc_bias, Tensor::randn({4, 6}, gen), proj_bias),
                       doctest::Contains("proj_weight is"), engine::Error);
  CHECK_THROWS_WITH_AS(ops::mlp(x, fc, fc_bias, proj, Tensor::randn({5}, gen)),
                       doctest::Contains("proj_bias is"), engine::Error);
  CHECK_THROWS_WITH_AS(ops::mlp(x, fc, fc_bias, proj, Tensor::randn({4}, gen, Dtype::f64)),
                       doctest::Contains("mlp"), engine::Error);
  CHECK_THROWS_WITH_AS(ops::mlp(Tensor::randn({0, 5}, gen), fc, fc_bias, proj, proj_bias),
                       doctest::Contains("mlp: empty input"), engine::Error);
}
