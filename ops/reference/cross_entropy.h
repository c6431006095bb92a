// Kernel 0 of cross_entropy: the readable version of the op (ops/cross_entropy.h), per row in
// double, the oracle the tests compare the fast kernels against (ops/cpu/cross_entropy.h,
// ops/cuda/cross_entropy.h). For a row of logits x_1..x_V with target t and label smoothing ε:
//   lse = m + log Σ_j e^(x_j − m),  m = max_j x_j       (the log of softmax's denominator)
//   loss = (1 − ε)·(lse − x_t) + ε·(lse − (1/V) Σ_j x_j)  (the target distribution (1 − ε)·onehot(t) + ε/V)
//   ∂loss/∂x_j = softmax(x)_j − (1 − ε)·[j = t] − ε/V
// A row whose target equals ignore_index has loss 0 and gradient 0.
//
//   N = rows (the leading dims folded), V = vocabulary (the last dim)
#pragma once

#include <cstdint>

#include "engine/tensor.h"

namespace ops::reference {

using engine::Tensor;

// logits: (..., V), any floating dtype and device; targets: (...) i32/i64 -> losses (...), f64 on the
// CPU: the op's Reduction::none.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = -100,
                     double label_smoothing = 0.0);

// The gradient of the sum of those losses with respect to the logits: (..., V), f64 on the CPU.
Tensor cross_entropy_backward(const Tensor& logits, const Tensor& targets, int64_t ignore_index = -100,
                              double label_smoothing = 0.0);

}  // namespace ops::reference
