// CPU kernels for layer normalisation over the last dimension (llm.c's layernorm_forward/backward),
// optionally fused with the residual add before it (llm.c's fused_residual_forward): the norm is then
// of residual = x + branch, written as it is computed, and the backward adds the residual stream's
// own gradient into the input gradient, so neither the add nor the gradient sum is a pass of its own.
//
// Legend: N = rows (all leading dims folded), C = channels (the normalised dim).
// Gradient convention: every output is written (=); the autograd engine accumulates.
#pragma once

#include <cstdint>

namespace ops::cpu {

// out, x: (N, C); weight: (C); bias: (C) or null; mean, rstd: (N), saved for the backward.
// branch: (N, C) or null; when given, residual: (N, C) = x + branch, and out is the norm of residual.
template <typename T>
void layernorm_forward(T* out, T* mean, T* rstd, T* residual, const T* x, const T* branch, const T* weight,
                       const T* bias, int64_t N, int64_t C, double eps);

// grad_x: (N, C) or null; grad_weight, grad_bias: (C) or null. grad_weight and grad_bias are
// column sums over rows taken in row order in double, so they do not depend on the thread count.
// x is the normalised input (the residual, for the fused op). grad_residual: (N, C) or null; when
// given, grad_x = grad_residual + the norm's input gradient (the fused op's gradient of x and branch).
template <typename T>
void layernorm_backward(T* grad_x, T* grad_weight, T* grad_bias, const T* grad_residual, const T* grad_out,
                        const T* x, const T* weight, const T* mean, const T* rstd, int64_t N, int64_t C);

}  // namespace ops::cpu
