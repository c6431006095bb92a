// CUDA kernels for fused softmax + cross-entropy with label smoothing and an ignored target value:
// the same math as ops/cpu/cross_entropy.h, one block per row.
//
// Legend: N = rows (leading dims of the logits folded), V = classes (vocabulary).
// Per row with target t (not ignored) and ε = label_smoothing:
//   lse = log Σ_j exp(x_j),  loss = (1−ε)·(lse − x_t) + ε·(lse − mean_j x_j)
//   ∂loss/∂x_j = softmax_j − (1−ε)·[j = t] − ε/V
// The backward forms the softmax as exp(x_j − m) / Σ_j exp(x_j − m) from the row's max m and sum
// that the forward keeps, never from a rounded log-sum-exp (see ops/cpu/cross_entropy.h).
// The fused classifier is the forward writing the gradient (for an upstream gradient of 1) in the
// same pass instead of the row statistics, and scale_gradient_rows its backward.
// Gradients are written (=), but scale_gradient_rows scales them in place. All pointers are device pointers.
#pragma once

#include <cstdint>

#include "engine/cuda/cuda_api.h"

namespace ops::cuda {

// losses: (N) per-row losses (0 where ignored or invalid); logits: (N, V), targets: (N). Either
// row_max, row_sum: (N) get each row's max m and Σ_j exp(x_j − m), saved for the backward, or (the
// fused classifier, row_max and row_sum null) grad_logits: (N, V) gets ∂loss/∂logits for an upstream
// gradient of 1: the row's softmax − target, divided by the non-ignored count when `mean`, zero in
// ignored and invalid rows. grad_logits may equal logits (the gradient written over them).
// reduced: a scalar, the sum of the losses (divided by the non-ignored count when `mean`, 0 when
// there is none), or null for no reduction; summary: (3) what the host needs to check the targets
// and divide the mean's gradient: {non-ignored targets, position of the first target outside [0, V)
// that is not ignored or -1, that target's value}.
// Reductions accumulate in double in a fixed order (per-row losses, then one block's fixed tree), so
// the result does not depend on the GPU.
template <typename T, typename I>
void cross_entropy_forward(T* losses, T* row_max, T* row_sum, T* grad_logits, T* reduced, int64_t* summary,
                           const T* logits, const I* targets, int64_t N, int64_t V, int64_t ignore_index,
                           double label_smoothing, bool mean, cudaStream_t stream);

// grad_logits: (N, V) = row_scale[n · row_scale_stride] / scale_divisor · ∂loss_n/∂logits_n, zero
// where ignored. row_scale_stride is 0 for a reduced loss (one upstream gradient for all rows), 1 for
// per-row losses; scale_divisor is the non-ignored count for `mean`, else 1.
template <typename T, typename I>
void cross_entropy_backward(T* grad_logits, const T* logits, const T* row_max, const T* row_sum, const I* targets,
                            const T* row_scale, int64_t row_scale_stride, double scale_divisor, int64_t N,
                            int64_t V, int64_t ignore_index, double label_smoothing, cudaStream_t stream);

// The fused classifier's backward: grad_logits: (N, V) row n *= row_scale[n · row_scale_stride]
// (stride 0: one upstream gradient for all rows), except ignored rows and rows whose scale is
// exactly 1 (the usual seed), which are not touched.
template <typename T, typename I>
void scale_gradient_rows(T* grad_logits, const I* targets, const T* row_scale, int64_t row_scale_stride, int64_t N,
                         int64_t V, int64_t ignore_index, cudaStream_t stream);

}  // namespace ops::cuda
