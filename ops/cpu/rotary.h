// CPU kernels of ops/rotary.h.   B = batch, H = heads, T = time, D = head dim, P = rotated pairs
#pragma once

#include <cstdint>

namespace ops::cpu {

// x, out: (B, H, T, D); angles: (T, P), or (H, T, P) when per_head.
template <typename T>
void rotary_forward(const T* x, const T* angles, T* out, int64_t B, int64_t H, int64_t Tn, int64_t D, int64_t P,
                    bool per_head);

// grad_x = rotation of grad_out by −θ. grad_angles (zeroed by the caller, may be null):
// Σ over the batch (and heads when shared) of grad_out · ∂out/∂θ, accumulated in a fixed order.
template <typename T>
void rotary_backward(const T* grad_out, const T* x, const T* angles, T* grad_x, T* grad_angles, int64_t B, int64_t H,
                     int64_t Tn, int64_t D, int64_t P, bool per_head);

}  // namespace ops::cpu
