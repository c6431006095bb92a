// CUDA kernels for layer normalisation over the last dimension (llm.c's layernorm.cuh, with the
// reductions in double and in a fixed order, as the CPU kernels in ops/cpu/layernorm.h), optionally
// fused with the residual add before it (llm.c's fused_residual_forward): one kernel adds, writes
// the sum and normalises it; the input-gradient kernel adds the residual stream's gradient in.
//
// Legend: N = rows (all leading dims folded), C = channels (the normalised dim).
// Gradient convention: every output is written (=); the autograd engine accumulates.
// All pointers are device pointers to contiguous row-major data.
#pragma once

#include <cstdint>

#include "engine/cuda/cuda_api.h"

namespace ops::cuda {

// out, x: (N, C); weight: (C); bias: (C) or null; mean, rstd: (N), saved for the backward.
// branch: (N, C) or null; when given, residual: (N, C) = x + branch, and out is the norm of residual.
template <typename T>
void layernorm_forward(T* out, T* mean, T* rstd, T* residual, const T* x, const T* branch, const T* weight,
                       const T* bias, int64_t N, int64_t C, double eps, cudaStream_t stream);

// Doubles of scratch that layernorm_backward needs for the parameter gradients of N rows of C.
int64_t layernorm_backward_scratch_size(int64_t N, int64_t C);

// grad_x: (N, C) or null; grad_weight, grad_bias: (C) or null; scratch: layernorm_backward_scratch_size
// doubles (only read when a parameter gradient is asked for). grad_weight and grad_bias are column
// sums in two fixed-order passes (chunks of rows, then the chunks in order): deterministic, no
// atomics. x is the normalised input (the residual, for the fused op); grad_residual: (N, C) or
// null, when given added into grad_x in the same pass.
template <typename T>
void layernorm_backward(T* grad_x, T* grad_weight, T* grad_bias, double* scratch, const T* grad_residual,
                        const T* grad_out, const T* x, const T* weight, const T* mean, const T* rstd, int64_t N,
                        int64_t C, cudaStream_t stream);

}  // namespace ops::cuda
