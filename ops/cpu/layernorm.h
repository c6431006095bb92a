// CPU kernels for layer normalisation over the last dimension (llm.c's layernorm_forward/backward).
//
// Legend: N = rows (all leading dims folded), C = channels (the normalised dim).
// Gradient convention: every output is written (=); the autograd engine accumulates.
#pragma once

#include <cstdint>

namespace ops::cpu {

// out, x: (N, C); weight: (C); bias: (C) or null; mean, rstd: (N), saved for the backward.
template <typename T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* x, const T* weight, const T* bias, int64_t N, int64_t C,
                       double eps);

// grad_x: (N, C) or null; grad_weight, grad_bias: (C) or null. grad_weight and grad_bias are
// column sums over rows taken in row order in double, so they do not depend on the thread count.
template <typename T>
void layernorm_backward(T* grad_x, T* grad_weight, T* grad_bias, const T* grad_out, const T* x, const T* weight,
                        const T* mean, const T* rstd, int64_t N, int64_t C);

}  // namespace ops::cpu
