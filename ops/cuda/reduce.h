// CUDA reduction kernels of ops/reduce.h over a contiguous (O, R, I) view, as the CPU kernels
// (ops/cpu/reduce.h): O = outer kept dims, R = reduced, I = inner kept dims; outputs are (O, I).
// Sums accumulate in double in an order fixed by the shape (a fixed shared-memory tree), never by
// atomics, so results are reproducible. The gradient of sum / mean is an elementwise broadcast
// (cuda::unary_forward with mul_scalar) and needs no kernel here.
// Backward kernels write (=) fresh input gradients; the autograd engine accumulates them.
#pragma once

#include <cstdint>

#include "engine/cuda/cuda_api.h"

namespace ops::cuda {

// out[o, i] = (Σ_r x[o, r, i]) / divisor.   x: (O, R, I)  out: (O, I)
template <typename T>
void sum_forward(T* out, const T* x, int64_t outer, int64_t reduce, int64_t inner, double divisor,
                 cudaStream_t stream);

// out[o, i] = max_r x[o, r, i]; argmax[o, i] = the first r attaining it (NaN is the maximum).
// x: (O, R, I) with R > 0   out, argmax: (O, I)
template <typename T>
void max_forward(T* out, int64_t* argmax, const T* x, int64_t outer, int64_t reduce, int64_t inner,
                 cudaStream_t stream);

// grad_x[o, r, i] = r == argmax[o, i] ? grad_out[o, i] : 0.   grad_x: (O, R, I)  grad_out, argmax: (O, I)
template <typename T>
void max_backward(T* grad_x, const T* grad_out, const int64_t* argmax, int64_t outer, int64_t reduce, int64_t inner,
                  cudaStream_t stream);

}  // namespace ops::cuda
