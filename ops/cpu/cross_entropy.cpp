// Fused cross-entropy kernels (see ops/cpu/cross_entropy.h). Rows are independent: OpenMP over rows.
#include "ops/cpu/cross_entropy.h"

#include <cmath>

#include "ops/cpu/vec_math.h"

namespace ops::cpu {

template <typename I>
int64_t first_invalid_target(const I* targets, int64_t N, int64_t V, int64_t ignore_index) {
  for (int64_t n = 0; n < N; ++n) {
    const int64_t t = int64_t(targets[n]);
    if (t != ignore_index && (t < 0 || t >= V)) return n;
  }
  return -1;
}

template <typename T, typename I>
void cross_entropy_forward(T* losses, T* row_max, T* row_sum, const T* logits, const I* targets, int64_t N, int64_t V,
                           int64_t ignore_index, double label_smoothing) {
#pragma omp parallel for schedule(static) if (N * V > (1 << 14))
  for (int64_t n = 0; n < N; ++n) {
    const T* x = logits + n * V;
    const T max_value = max_of(x, V);
    const double sum = sum_exp(x, max_value, V, static_cast<T*>(nullptr));
    const double row_lse = double(max_value) + std::log(sum);
    row_max[n] = max_value;
    row_sum[n] = T(sum);
    const int64_t t = int64_t(targets[n]);
    if (t == ignore_index) {
      losses[n] = T(0);
      continue;
    }
    const double nll = row_lse - double(x[t]);
    const double smooth = label_smoothing > 0 ? row_lse - sum_as_double(x, V) / double(V) : 0.0;
    losses[n] = T((1.0 - label_smoothing) * nll + label_smoothing * smooth);
  }
}

template <typename T, typename I>
void cross_entropy_backward(T* grad_logits, const T* logits, const T* row_max, const T* row_sum, const I* targets,
                            const T* row_scale, int64_t row_scale_stride, int64_t N, int64_t V, int64_t ignore_index,
                            double label_smoothing) {
  const T uniform = T(label_smoothing / double(V)), on_target = T(1.0 - label_smoothing);
#pragma omp parallel for schedule(static) if (N * V > (1 << 14))
  for (int64_t n = 0; n < N; ++n) {
    T* g = grad_logits + n * V;
    const int64_t t = int64_t(targets[n]);
    if (t == ignore_index) {
      for (int64_t j = 0; j < V; ++j) g[j] = T(0);
      continue;
    }
    const T* x = logits + n * V;
    const T scale = row_scale[n * row_scale_stride];
    // scale · softmax_j = exp(x_j − m) · (scale / Σ), the factor rounded once.
    const T scale_over_sum = T(double(scale) / double(row_sum[n]));
    exp_shifted(x, row_max[n], V, g);
    for (int64_t j = 0; j < V; ++j) g[j] = scale_over_sum * g[j] - scale * uniform;
    g[t] -= scale * on_target;
  }
}

template <typename T, typename I>
void cross_entropy_with_gradient(T* losses, T* grad_logits, const T* logits, const I* targets, int64_t N, int64_t V,
                                 int64_t ignore_index, double label_smoothing, double grad_scale) {
  const T uniform = T(label_smoothing / double(V)), on_target = T(1.0 - label_smoothing);
  // The same roundings as cross_entropy_backward with row_scale = T(grad_scale): with an upstream
  // gradient of 1 the two ops give the same bits.
  const T scale = T(grad_scale);
#pragma omp parallel for schedule(static) if (N * V > (1 << 14))
  for (int64_t n = 0; n < N; ++n) {
    const T* x = logits + n * V;
    T* g = grad_logits + n * V;
    const int64_t t = int64_t(targets[n]);
    if (t == ignore_index) {
      losses[n] = T(0);
      for (int64_t j = 0; j < V; ++j) g[j] = T(0);
      continue;
    }
    // Everything the loss reads from x, before g (which may be x) is written.
    const T max_value = max_of(x, V);
    const double target_logit = double(x[t]);
    const double mean_logit = label_smoothing > 0 ? sum_as_double(x, V) / double(V) : 0.0;
    const double sum = sum_exp(x, max_value, V, g);  // g_j = exp(x_j − m)
    const double row_lse = double(max_value) + std::log(sum);
    const double smooth = label_smoothing > 0 ? row_lse - mean_logit : 0.0;
    losses[n] = T((1.0 - label_smoothing) * (row_lse - target_logit) + label_smoothing * smooth);
    const T scale_over_sum = T(double(scale) / double(T(sum)));
    for (int64_t j = 0; j < V; ++j) g[j] = scale_over_sum * g[j] - scale * uniform;
    g[t] -= scale * on_target;
  }
}

template <typename T, typename I>
void scale_gradient_rows(T* grad_logits, const I* targets, const T* row_scale, int64_t row_scale_stride, int64_t N,
                         int64_t V, int64_t ignore_index) {
#pragma omp parallel for schedule(static) if (N * V > (1 << 14))
  for (int64_t n = 0; n < N; ++n) {
    const T scale = row_scale[n * row_scale_stride];
    if (scale == T(1) || int64_t(targets[n]) == ignore_index) continue;
    T* g = grad_logits + n * V;
    for (int64_t j = 0; j < V; ++j) g[j] *= scale;
  }
}

template int64_t first_invalid_target<int32_t>(const int32_t*, int64_t, int64_t, int64_t);
template int64_t first_invalid_target<int64_t>(const int64_t*, int64_t, int64_t, int64_t);
#define INSTANTIATE(T, I)                                                                                        \
  template void cross_entropy_forward<T, I>(T*, T*, T*, const T*, const I*, int64_t, int64_t, int64_t, double);  \
  template void cross_entropy_backward<T, I>(T*, const T*, const T*, const T*, const I*, const T*, int64_t,      \
                                             int64_t, int64_t, int64_t, double);                                 \
  template void cross_entropy_with_gradient<T, I>(T*, T*, const T*, const I*, int64_t, int64_t, int64_t, double, \
                                                  double);                                                       \
  template void scale_gradient_rows<T, I>(T*, const I*, const T*, int64_t, int64_t, int64_t, int64_t);
INSTANTIATE(float, int32_t)
INSTANTIATE(float, int64_t)
INSTANTIATE(double, int32_t)
INSTANTIATE(double, int64_t)
#undef INSTANTIATE

}  // namespace ops::cpu
