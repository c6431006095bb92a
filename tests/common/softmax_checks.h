// One check body for CUDA softmax and log-softmax (ops/softmax.h), run by tests/ops_emu and
// tests/ops_gpu: forward and backward against the CPU ops along the last dim (block-per-row and
// short-row kernels) and other dims (column kernel), with non-contiguous and large-magnitude inputs.
// Tolerances: op_compare::tolerance.
#pragma once

#include <algorithm>
#include <vector>

#include "common/op_compare.h"
#include "ops/elementwise.h"
#include "ops/softmax.h"

namespace softmax_checks {

using engine::Dtype;
using engine::Tensor;

inline void check_all(Dtype dtype) {
  engine::Generator gen(dtype == Dtype::f32 ? 301 : 302);
  const double tol = op_compare::tolerance(dtype);
  struct Case {
    engine::Shape shape;
    int64_t dim;
  };
  for (bool log : {false, true}) {
    auto op_on = [log](const Tensor& x, int64_t dim) { return log ? ops::log_softmax(x, dim) : ops::softmax(x, dim); };
    for (const Case& c : {Case{{5, 133}, -1}, Case{{3, 4, 7}, 2}, Case{{4, 37, 6}, 1}, Case{{9, 5}, 0}}) {
      CAPTURE(log);
      CAPTURE(engine::shape_str(c.shape));
      op_compare::check_forward_backward([&](const std::vector<Tensor>& t) { return op_on(t[0], c.dim); },
                                         {{Tensor::randn(c.shape, gen, dtype), true}}, gen, tol);
    }
    // Large logits (the max must be subtracted) through a transposed view. Nearly one-hot rows make
    // the backward cancel (y·(g − Σ g·y) with y ≈ 1): in f64 the different summation order of the
    // block tree shows up at ~1e-11 of the largest gradient, hence 1e-9 there.
    CAPTURE(log);
    op_compare::check_forward_backward(
        [&](const std::vector<Tensor>& t) { return op_on(t[0].transpose(0, 1) * 60.0, -1); },
        {{Tensor::randn({70, 3}, gen, dtype), true}}, gen, std::max(tol, 1e-9));
  }
}

}  // namespace softmax_checks
