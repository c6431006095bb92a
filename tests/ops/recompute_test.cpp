// engine::recompute_in_backward on ops: the gradients of explicit and captured inputs (a leaf, a
// parameter, a tensor made by earlier ops) are the same bits as without recompute, dropout replays
// its masks and the generator keeps its state, the function's activations are not kept, and a
// function that reads a different tensor on its rerun is refused with a message saying so.
#include <doctest/doctest.h>

#include <vector>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/recompute.h"
#include "engine/rng.h"
#include "ops/dropout.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/mlp.h"
#include "ops/reduce.h"

using engine::Tensor;

namespace {

struct Result {
  std::vector<float> out, grad_x, grad_weight, grad_scale;
  uint64_t offset_after_forward = 0, offset_after_backward = 0;
};

// out = sum(dropout(mlp(x) · (2·scale), gen)) through an upstream op (2·scale is made outside the
// function, so it is captured with a graph behind it), with or without recompute.
Result run(bool recompute) {
  engine::Generator init(5), gen(9);
  const Tensor x = Tensor::randn({4, 6, 8}, init).requires_grad_();
  const Tensor fc = Tensor::randn({16, 8}, init).requires_grad_(), fc_bias = Tensor::randn({16}, init);
  const Tensor proj = Tensor::randn({8, 16}, init), proj_bias = Tensor::randn({8}, init);
  const Tensor weight = Tensor::randn({8, 8}, init).requires_grad_();
  const Tensor scale = Tensor::randn({8}, init).requires_grad_();
  const Tensor doubled = scale * 2.0;
  auto function = [x, fc, fc_bias, proj, proj_bias, weight, doubled, g = &gen] {
    const Tensor hidden = ops::mlp(x, fc, fc_bias, proj, proj_bias);
    return std::vector<Tensor>{ops::dropout(ops::matmul(hidden, weight) * doubled, 0.3, *g, true)};
  };
  const Tensor y = recompute ? engine::recompute_in_backward(function, {&gen})[0] : function()[0];
  Result r;
  r.offset_after_forward = gen.offset();
  ops::sum(y * y).backward();
  r.offset_after_backward = gen.offset();
  r.out = y.to_vector<float>();
  r.grad_x = x.grad().to_vector<float>();
  r.grad_weight = weight.grad().to_vector<float>();
  r.grad_scale = scale.grad().to_vector<float>();
  return r;
}

}  // namespace

TEST_CASE("recompute_in_backward gives the gradients without recompute, bit for bit, dropout included") {
  const Result kept = run(false), recomputed = run(true);
  CHECK(recomputed.out == kept.out);
  CHECK(recomputed.grad_x == kept.grad_x);
  CHECK(recomputed.grad_weight == kept.grad_weight);
  CHECK(recomputed.grad_scale == kept.grad_scale);  // through the captured tensor's own graph
  CHECK(recomputed.offset_after_forward == kept.offset_after_forward);
  CHECK(recomputed.offset_after_backward == recomputed.offset_after_forward);  // the replay gave the state back
}

TEST_CASE("recompute_in_backward keeps only what the function captured") {
  engine::Generator init(6);
  const Tensor x = Tensor::randn({64, 256}, init).requires_grad_();
  const Tensor fc = Tensor::randn({1024, 256}, init), fc_bias = Tensor::randn({1024}, init);
  const Tensor proj = Tensor::randn({256, 1024}, init), proj_bias = Tensor::randn({256}, init);
  auto function = [x, fc, fc_bias, proj, proj_bias] {
    return std::vector<Tensor>{ops::mlp(x, fc, fc_bias, proj, proj_bias)};
  };
  engine::Allocator& allocator = engine::cpu_allocator();
  const size_t before = allocator.stats().bytes_in_use;
  Tensor kept = function()[0];
  const size_t with_graph = allocator.stats().bytes_in_use - before;
  kept = Tensor();
  const size_t base = allocator.stats().bytes_in_use;
  Tensor recomputed = engine::recompute_in_backward(function)[0];
  const size_t with_recompute = allocator.stats().bytes_in_use - base;
  // The MLP keeps pre and hidden, (64, 1024) each, beside its (64, 256) output; recompute only the output.
  CHECK(with_recompute == size_t(64 * 256 * 4));
  CHECK(with_graph >= with_recompute + size_t(2 * 64 * 1024 * 4));
  ops::sum(recomputed).backward();
  CHECK(x.grad().defined());
}

TEST_CASE("recompute_in_backward refuses a function that reads another tensor on its rerun") {
  engine::Generator init(7);
  const Tensor a = Tensor::randn({5}, init).requires_grad_(), b = Tensor::randn({5}, init).requires_grad_();
  int calls = 0;
  // The first call reads a·2, the rerun b·2: a different tensor with a graph behind it.
  const Tensor a2 = a * 2.0, b2 = b * 2.0;
  auto function = [&] { return std::vector<Tensor>{ops::exp(++calls == 1 ? a2 : b2)}; };
  const Tensor y = engine::recompute_in_backward(function)[0];
  CHECK_THROWS_WITH_AS(ops::sum(y).backward(), doctest::Contains("did not use the first time"), engine::Error);
}

TEST_CASE("recompute_in_backward without grad mode just runs the function") {
  engine::Generator init(8);
  const Tensor a = Tensor::randn({5}, init).requires_grad_();
  const engine::NoGradGuard no_grad;
  const Tensor y = engine::recompute_in_backward([&] { return std::vector<Tensor>{ops::exp(a)}; })[0];
  CHECK_FALSE(y.requires_grad());
}
