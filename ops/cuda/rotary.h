// CUDA kernels of ops/rotary.h, as the CPU kernels (ops/cpu/rotary.h).
//   B = batch, H = heads, T = time, D = head dim, P = rotated pairs (2P <= D)
// Backward kernels write (=) fresh gradients; the autograd engine accumulates them.
#pragma once

#include <cstdint>

#include "engine/cuda/cuda_api.h"

namespace ops::cuda {

// x, out: (B, H, T, D); angles: (T, P), or (H, T, P) when per_head. Dims past 2P pass through.
template <typename T>
void rotary_forward(const T* x, const T* angles, T* out, int64_t B, int64_t H, int64_t Tn, int64_t D, int64_t P,
                    bool per_head, cudaStream_t stream);

// grad_x = grad_out rotated by −θ. grad_angles (may be null): for each angle, Σ over the batch (and
// the heads when shared) of grad_out · ∂out/∂θ, in double and in a fixed order.
template <typename T>
void rotary_backward(const T* grad_out, const T* x, const T* angles, T* grad_x, T* grad_angles, int64_t B, int64_t H,
                     int64_t Tn, int64_t D, int64_t P, bool per_head, cudaStream_t stream);

}  // namespace ops::cuda
