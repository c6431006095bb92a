// CPU kernels for fused softmax + cross-entropy with label smoothing and an ignored target value.
//
// Legend: N = rows (leading dims of the logits folded), V = classes (vocabulary).
// Per row with target t (not ignored) and ε = label_smoothing:
//   lse = log Σ_j exp(x_j),  loss = (1−ε)·(lse − x_t) + ε·(lse − mean_j x_j)
//   ∂loss/∂x_j = softmax_j − (1−ε)·[j = t] − ε/V
// The forward keeps the row's max m and Σ_j exp(x_j − m) for the backward, which forms the softmax
// as exp(x_j − m) / Σ: x_j − m is exact in floating point for the classes that carry the
// probability (Sterbenz), so each probability is good to a few ulp whatever the logits' size. (A
// log-sum-exp rounded to f32 would put its rounding, up to 6e-8·|lse|, into every probability:
// 4e-6 relative at logits near 100.)
// The fused classifier (cross_entropy_with_gradient) computes the loss and the gradient in one pass
// per row, with the same arithmetic as the two kernels here, and keeps neither the row statistics
// nor a probability buffer: its gradient may be written over the logits.
// Gradients are written (=).
#pragma once

#include <cstdint>

namespace ops::cpu {

// Index of the first target outside [0, V) that is not ignore_index, or -1 when all are valid.
template <typename I>
int64_t first_invalid_target(const I* targets, int64_t N, int64_t V, int64_t ignore_index);

// losses: (N) per-row losses (0 where ignored); row_max, row_sum: (N) each row's max m and
// Σ_j exp(x_j − m), saved for the backward. logits: (N, V), targets: (N).
template <typename T, typename I>
void cross_entropy_forward(T* losses, T* row_max, T* row_sum, const T* logits, const I* targets, int64_t N, int64_t V,
                           int64_t ignore_index, double label_smoothing);

// grad_logits: (N, V) = row_scale[n · row_scale_stride] · ∂loss_n/∂logits_n, zero where ignored.
// row_scale_stride is 0 for a reduced loss (one scale for all rows), 1 for per-row losses.
template <typename T, typename I>
void cross_entropy_backward(T* grad_logits, const T* logits, const T* row_max, const T* row_sum, const I* targets,
                            const T* row_scale,
                            int64_t row_scale_stride, int64_t N, int64_t V, int64_t ignore_index,
                            double label_smoothing);

// The fused classifier's pass. losses: (N) as cross_entropy_forward gives them; grad_logits: (N, V)
// = grad_scale · ∂loss_n/∂logits_n (zero where ignored), grad_scale being the mean's 1/count or 1.
// grad_logits may be logits itself: each row's loss terms are read before its gradient overwrites it.
template <typename T, typename I>
void cross_entropy_with_gradient(T* losses, T* grad_logits, const T* logits, const I* targets, int64_t N, int64_t V,
                                 int64_t ignore_index, double label_smoothing, double grad_scale);

// The fused classifier's backward: grad_logits: (N, V) row n *= row_scale[n · row_scale_stride],
// skipping ignored rows (they stay 0) and rows whose scale is exactly 1 (the usual seed: no pass).
template <typename T, typename I>
void scale_gradient_rows(T* grad_logits, const I* targets, const T* row_scale, int64_t row_scale_stride, int64_t N,
                         int64_t V, int64_t ignore_index);

}  // namespace ops::cpu
