// One check body for the CUDA rotary op (ops/rotary.h), run by tests/ops_emu and tests/ops_gpu:
// forward, input gradient and angle gradient against the CPU op, for angles shared by the heads
// and per head, full and partial rotation, with non-contiguous x and angles.
// Tolerances: op_compare::tolerance.
#pragma once

#include <vector>

#include "common/op_compare.h"
#include "ops/rotary.h"

namespace rotary_checks {

using engine::Dtype;
using engine::Tensor;

inline void check_all(Dtype dtype) {
  engine::Generator gen(dtype == Dtype::f32 ? 401 : 402);
  const double tol = op_compare::tolerance(dtype);
  const int64_t B = 3, H = 2, T = 5, D = 10;
  // Shared (T, D/2) angles.
  op_compare::check_forward_backward([](const std::vector<Tensor>& t) { return ops::rotary(t[0], t[1]); },
                                     {{Tensor::randn({B, H, T, D}, gen, dtype), true},
                                      {Tensor::randn({T, D / 2}, gen, dtype), true}},
                                     gen, tol);
  // Per-head (H, T, 3) angles: partial rotation, the last 4 dims pass through.
  op_compare::check_forward_backward([](const std::vector<Tensor>& t) { return ops::rotary(t[0], t[1]); },
                                     {{Tensor::randn({B, H, T, D}, gen, dtype), true},
                                      {Tensor::randn({H, T, 3}, gen, dtype), true}},
                                     gen, tol);
  // x from a (B, T, H, D) layout (the usual attention transpose) and transposed angles; only x
  // needs a gradient.
  op_compare::check_forward_backward(
      [](const std::vector<Tensor>& t) { return ops::rotary(t[0].transpose(1, 2), t[1].transpose(0, 1)); },
      {{Tensor::randn({B, T, H, D}, gen, dtype), true}, {Tensor::randn({D / 2, T}, gen, dtype), false}}, gen, tol);
}

}  // namespace rotary_checks
