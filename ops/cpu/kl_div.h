// CPU kernels for KL(p ‖ q) with both distributions given as log-probabilities.
//
// Legend: n = number of elements. With x = log q, t = log p:
//   loss = (1/n) Σ exp(t)·(t − x),  ∂loss/∂x = −exp(t)/n,  ∂loss/∂t = exp(t)·(t − x + 1)/n
// Gradients are written (=).
#pragma once

#include <cstdint>

namespace ops::cpu {

// Σ exp(t)·(t − x) over n elements, in double over fixed-size chunks added in order, so the result
// does not depend on the thread count.
template <typename T>
double kl_div_sum(const T* x, const T* t, int64_t n);

// grad_x, grad_t: (n) or null, each scaled by `scale` (the upstream gradient over n).
template <typename T>
void kl_div_backward(T* grad_x, T* grad_t, const T* x, const T* t, double scale, int64_t n);

}  // namespace ops::cpu
