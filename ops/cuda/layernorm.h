// CUDA kernels for layer normalisation over the last dimension (llm.c's layernorm.cuh, with the
// reductions in double and in a fixed order, as the CPU kernels in ops/cpu/layernorm.h).
//
// Legend: N = rows (all leading dims folded), C = channels (the normalised dim).
// Gradient convention: every output is written (=); the autograd engine accumulates.
// All pointers are device pointers to contiguous row-major data.
#pragma once

#include <cstdint>

#include "engine/cuda/cuda_api.h"

namespace ops::cuda {

// out, x: (N, C); weight: (C); bias: (C) or null; mean, rstd: (N), saved for the backward.
template <typename T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* x, const T* weight, const T* bias, int64_t N, int64_t C,
                       double eps, cudaStream_t stream);

// Doubles of scratch that layernorm_backward needs for the parameter gradients of N rows of C.
int64_t layernorm_backward_scratch_size(int64_t N, int64_t C);

// grad_x: (N, C) or null; grad_weight, grad_bias: (C) or null; scratch: layernorm_backward_scratch_size
// doubles (only read when a parameter gradient is asked for). grad_weight and grad_bias are column
// sums in two fixed-order passes (chunks of rows, then the chunks in order): deterministic, no
// atomics.
template <typename T>
void layernorm_backward(T* grad_x, T* grad_weight, T* grad_bias, double* scratch, const T* grad_out, const T* x,
                        const T* weight, const T* mean, const T* rstd, int64_t N, int64_t C, cudaStream_t stream);

}  // namespace ops::cuda
