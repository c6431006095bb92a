// One check body for layer_norm on CUDA, compared with the CPU op: odd row counts and channel
// counts (not multiples of a warp or a block), channels spanning two column blocks and rows
// spanning several row chunks of the parameter gradients, a non-contiguous input, no bias, and
// each gradient on its own. Run by tests/ops_emu and tests/ops_gpu.
#pragma once

#include <doctest/doctest.h>

#include <vector>

#include "common/backend_checks.h"
#include "common/cuda_op_compare.h"
#include "engine/rng.h"
#include "ops/layernorm.h"

namespace layernorm_checks {

using cuda_op_compare::Input;
using engine::DType;
using engine::Tensor;

inline void check_layer_norm(engine::Generator& gen, DType dtype) {
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

}  // namespace layernorm_checks
