// CPU softmax and log-softmax kernels over a contiguous (O, R, I) view whose middle dimension R is
// the softmax dimension (O = dims before it, I = dims after; I = 1 for the last dim, the fast path).
// Stable for inputs of any magnitude: the maximum of each slice is subtracted before exp, and the
// normalising sum is accumulated in double.
// Backward kernels write (=) fresh input gradients; the autograd engine accumulates them.
#pragma once

#include <cstdint>

namespace ops::cpu {

// y = softmax(x) or log_softmax(x) along R.   x, y: (O, R, I), R > 0
template <typename T>
void softmax_forward(T* y, const T* x, int64_t outer, int64_t reduce, int64_t inner, bool log);

// From the forward output y:
//   softmax:     grad_x = y * (grad_y - Σ_r grad_y * y)
//   log_softmax: grad_x = grad_y - exp(y) * Σ_r grad_y
// grad_x, grad_y, y: (O, R, I)
template <typename T>
void softmax_backward(T* grad_x, const T* grad_y, const T* y, int64_t outer, int64_t reduce, int64_t inner,
                      bool log);

}  // namespace ops::cpu
