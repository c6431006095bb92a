// CUDA kernels for KL(p ‖ q) with both distributions given as log-probabilities: the same math as
// ops/cpu/kl_div.h.
//
// Legend: n = number of elements. With x = log q, t = log p:
//   loss = (1/n) Σ exp(t)·(t − x),  ∂loss/∂x = −exp(t)/n,  ∂loss/∂t = exp(t)·(t − x + 1)/n
// Gradients are written (=). All pointers are device pointers.
#pragma once

#include <cstdint>

#include "engine/cuda/cuda_api.h"

namespace ops::cuda {

// Doubles of workspace kl_div_forward needs for n elements (one partial sum per block).
int64_t kl_div_partials(int64_t n);

// loss: a scalar = Σ exp(t)·(t − x) / n (0 when n is 0); x, t: (n); partials: (kl_div_partials(n))
// workspace. Two passes in double: fixed per-block trees over a grid that depends only on n, then
// one block adds the partial sums, so the result does not depend on the GPU.
template <typename T>
void kl_div_forward(T* loss, double* partials, const T* x, const T* t, int64_t n, cudaStream_t stream);

// grad_x, grad_t: (n) or null, each scaled by grad_loss[0] / n (grad_loss: the upstream scalar).
template <typename T>
void kl_div_backward(T* grad_x, T* grad_t, const T* x, const T* t, const T* grad_loss, int64_t n,
                     cudaStream_t stream);

}  // namespace ops::cuda
