// One check body for layer_norm and residual_layer_norm on CUDA, compared with the CPU op: odd row
// counts and channel counts (not multiples of a warp, a block or a 128-bit pack, so rows start off
// the 16-byte grid and end in a short pack: the kernels' scalar tail), channel counts that are
// multiples of a pack (the 128-bit path), channels spanning two column blocks and rows spanning
// several row chunks of the parameter gradients, a non-contiguous input, no bias, and each gradient
// on its own. Run by tests/ops_emu and tests/ops_gpu.
#pragma once

#include <doctest/doctest.h>

#include <vector>

#include "common/backend_checks.h"
#include "common/cuda_op_compare.h"
#include "engine/rng.h"
#include "ops/indexing.h"
#include "ops/layernorm.h"

namespace layernorm_checks {

using cuda_op_compare::Input;
using engine::Dtype;
using engine::Tensor;

inline void check_layer_norm(engine::Generator& gen, Dtype dtype) {
  const double tolerance = cuda_op_compare::tolerance_for(dtype);
  auto random = [&](const engine::Shape& shape) { return Tensor::randn(shape, gen, dtype); };
  auto layer_norm = [](const std::vector<Tensor>& in) {
    return ops::layer_norm(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), 1e-5);
  };
  struct Case {
    const char* name;
    std::vector<Input> inputs;
  };
  const std::vector<Case> cases = {
      {"odd sizes", {{random({2, 19, 37})}, {random({37})}, {random({37})}}},
      // 130 rows: three row chunks, the last partial; 300 channels: two column blocks.
      {"many rows, wide", {{random({130, 300})}, {random({300})}, {random({300})}}},
      {"transposed input, no bias",
       {{random({45, 3, 8}), [](const Tensor& t) { return t.transpose(0, 2); }}, {random({45})}}},
      {"input gradient only", {{random({5, 33})}, {random({33}), {}, false}, {random({33}), {}, false}}},
      {"parameter gradients only", {{random({70, 9}), {}, false}, {random({9})}, {random({9})}}},
      // Three channels: the fewest for which the input gradient is not identically zero.
      {"three channels", {{random({6, 3})}, {random({3})}, {random({3})}}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    cuda_op_compare::check_forward_backward(layer_norm, c.inputs, gen, tolerance);
  }

  // The parameter gradients are the same bits on every run: fixed-order sums, no atomics.
  const Tensor x = random({90, 40}).to(backend_checks::kCuda), seed = random({90, 40}).to(backend_checks::kCuda);
  const Tensor weight_values = random({40}).to(backend_checks::kCuda);
  std::vector<Tensor> weight_grads;
  for (int run = 0; run < 2; ++run) {
    Tensor weight = weight_values.detach().requires_grad_();
    ops::layer_norm(x, weight, Tensor(), 1e-5).backward(seed);
    weight_grads.push_back(weight.grad());
  }
  CHECK(backend_checks::relative_error(weight_grads[0], weight_grads[1]) == 0.0);

  CHECK_THROWS_WITH_AS(ops::layer_norm(random({2, 3}).to(backend_checks::kCuda), random({3}), Tensor(), 1e-5),
                       doctest::Contains("layer_norm: tensors on different devices"), engine::Error);
}

// The fused residual add + layer norm: both outputs compared (concatenated, so that the backward
// seeds both with random gradients), every input's gradient, and the same bits on every run.
inline void check_residual_layer_norm(engine::Generator& gen, Dtype dtype) {
  const double tolerance = cuda_op_compare::tolerance_for(dtype);
  auto random = [&](const engine::Shape& shape) { return Tensor::randn(shape, gen, dtype); };
  auto fused = [](const std::vector<Tensor>& in) {
    const ops::ResidualLayerNorm out =
        ops::residual_layer_norm(in[0], in[1], in[2], in.size() > 3 ? in[3] : Tensor(), 1e-5);
    return ops::concat({out.residual, out.normed}, -1);
  };
  struct Case {
    const char* name;
    std::vector<Input> inputs;
  };
  const std::vector<Case> cases = {
      {"odd sizes", {{random({3, 11, 37})}, {random({3, 11, 37})}, {random({37})}, {random({37})}}},
      // 768 channels: whole packs on every row (the 128-bit loads and stores), 130 rows: three chunks.
      {"whole packs, many rows", {{random({130, 768})}, {random({130, 768})}, {random({768})}, {random({768})}}},
      // Six channels: one whole pack and a short one in f32, three whole packs in f64.
      {"six channels", {{random({9, 6})}, {random({9, 6})}, {random({6})}, {random({6})}}},
      {"transposed branch, no bias",
       {{random({7, 45})}, {random({45, 7}), [](const Tensor& t) { return t.transpose(0, 1); }}, {random({45})}}},
      {"residual inputs' gradients only",
       {{random({5, 33})}, {random({5, 33})}, {random({33}), {}, false}, {random({33}), {}, false}}},
      {"parameter gradients only",
       {{random({70, 9}), {}, false}, {random({70, 9}), {}, false}, {random({9})}, {random({9})}}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    cuda_op_compare::check_forward_backward(fused, c.inputs, gen, tolerance);
  }
  // The residual dropped, as a model's final norm drops it: its gradient arrives as zeros.
  auto normed_only = [](const std::vector<Tensor>& in) {
    return ops::residual_layer_norm(in[0], in[1], in[2], in[3], 1e-5).normed;
  };
  cuda_op_compare::check_forward_backward(
      normed_only, {{random({6, 20})}, {random({6, 20})}, {random({20})}, {random({20})}}, gen, tolerance);

  const Tensor x = random({90, 40}).to(backend_checks::kCuda), seed = random({90, 80}).to(backend_checks::kCuda);
  const Tensor branch_values = random({90, 40}).to(backend_checks::kCuda);
  const Tensor weight_values = random({40}).to(backend_checks::kCuda);
  std::vector<Tensor> grads;
  for (int run = 0; run < 2; ++run) {
    Tensor branch = branch_values.detach().requires_grad_(), weight = weight_values.detach().requires_grad_();
    fused({x, branch, weight}).backward(seed);
    grads.push_back(branch.grad());
    grads.push_back(weight.grad());
  }
  CHECK(backend_checks::relative_error(grads[0], grads[2]) == 0.0);
  CHECK(backend_checks::relative_error(grads[1], grads[3]) == 0.0);

  CHECK_THROWS_WITH_AS(ops::residual_layer_norm(random({2, 3}).to(backend_checks::kCuda), random({2, 3}),
                                                random({3}).to(backend_checks::kCuda), Tensor(), 1e-5),
                       doctest::Contains("residual_layer_norm: tensors on different devices"), engine::Error);
}

}  // namespace layernorm_checks
