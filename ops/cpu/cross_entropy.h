// CPU kernels for fused softmax + cross-entropy with label smoothing and an ignored target value.
//
// Legend: N = rows (leading dims of the logits folded), V = classes (vocabulary).
// Per row with target t (not ignored) and ε = label_smoothing:
//   lse = log Σ_j exp(x_j),  loss = (1−ε)·(lse − x_t) + ε·(lse − mean_j x_j)
//   ∂loss/∂x_j = softmax_j − (1−ε)·[j = t] − ε/V
// Gradients are written (=).
#pragma once

#include <cstdint>

namespace ops::cpu {

// Index of the first target outside [0, V) that is not ignore_index, or -1 when all are valid.
template <typename I>
int64_t first_invalid_target(const I* targets, int64_t N, int64_t V, int64_t ignore_index);

// losses: (N) per-row losses (0 where ignored); lse: (N) log-sum-exp per row, saved for the
// backward. logits: (N, V), targets: (N).
template <typename T, typename I>
void cross_entropy_forward(T* losses, T* lse, const T* logits, const I* targets, int64_t N, int64_t V,
                           int64_t ignore_index, double label_smoothing);

// grad_logits: (N, V) = row_scale[n · row_scale_stride] · ∂loss_n/∂logits_n, zero where ignored.
// row_scale_stride is 0 for a reduced loss (one scale for all rows), 1 for per-row losses.
template <typename T, typename I>
void cross_entropy_backward(T* grad_logits, const T* logits, const T* lse, const I* targets, const T* row_scale,
                            int64_t row_scale_stride, int64_t N, int64_t V, int64_t ignore_index,
                            double label_smoothing);

}  // namespace ops::cpu
