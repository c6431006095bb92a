// CUDA softmax and log-softmax kernels of ops/softmax.h over a contiguous (O, R, I) view, as the
// CPU kernels (ops/cpu/softmax.h): R is the softmax dimension, O the dims before it, I the dims
// after (I = 1 for the last dim). Stable for inputs of any magnitude (the row maximum is subtracted
// before exp); normalising sums accumulate in double in a fixed order.
// Backward kernels write (=) fresh input gradients; the autograd engine accumulates them.
#pragma once

#include <cstdint>

#include "engine/cuda/cuda_api.h"

namespace ops::cuda {

// y = softmax(x) or log_softmax(x) along R.   x, y: (O, R, I), R > 0
template <typename T>
void softmax_forward(T* y, const T* x, int64_t outer, int64_t reduce, int64_t inner, bool log, cudaStream_t stream);

// From the forward output y:
//   softmax:     grad_x = y * (grad_y - Σ_r grad_y * y)
//   log_softmax: grad_x = grad_y - exp(y) * Σ_r grad_y
// grad_x, grad_y, y: (O, R, I)
template <typename T>
void softmax_backward(T* grad_x, const T* grad_y, const T* y, int64_t outer, int64_t reduce, int64_t inner, bool log,
                      cudaStream_t stream);

}  // namespace ops::cuda
