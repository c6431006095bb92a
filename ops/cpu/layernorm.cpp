// Layer normalisation kernels (see ops/cpu/layernorm.h). Rows are independent: OpenMP over rows
// for the forward and grad_x, over column blocks for the parameter gradients.
#include "ops/cpu/layernorm.h"

#include <algorithm>
#include <cmath>

#include "ops/cpu/vec_math.h"

namespace ops::cpu {

template <typename T>
void layernorm_forward(T* out, T* mean, T* rstd, T* residual, const T* x, const T* branch, const T* weight,
                       const T* bias, int64_t N, int64_t C, double eps) {
#pragma omp parallel for schedule(static) if (N * C > (1 << 14))
  for (int64_t row = 0; row < N; ++row) {
    const T* x_row = x + row * C;
    if (branch) {  // the fused residual add: the row is normalised from the sum just written
      T* residual_row = residual + row * C;
      const T* branch_row = branch + row * C;
      for (int64_t c = 0; c < C; ++c) residual_row[c] = x_row[c] + branch_row[c];
      x_row = residual_row;
    }
    const double m = sum_as_double(x_row, C) / double(C);
    const double sum_sq = sum_in_lanes(C, [&](int64_t c) {
      const double d = double(x_row[c]) - m;
      return d * d;
    });
    const double s = 1.0 / std::sqrt(sum_sq / double(C) + eps);
    const T m_t = T(m), s_t = T(s);
    T* out_row = out + row * C;
    for (int64_t c = 0; c < C; ++c) {
      const T normalised = (x_row[c] - m_t) * s_t;
      out_row[c] = normalised * weight[c] + (bias ? bias[c] : T(0));
    }
    mean[row] = m_t;
    rstd[row] = s_t;
  }
}

template <typename T>
void layernorm_backward(T* grad_x, T* grad_weight, T* grad_bias, const T* grad_residual, const T* grad_out,
                        const T* x, const T* weight, const T* mean, const T* rstd, int64_t N, int64_t C) {
  if (grad_x) {
    // dx = rstd · (dn − mean(dn) − x̂ · mean(dn · x̂)),  dn = dy · weight,  x̂ = (x − mean) · rstd,
    // plus the residual stream's gradient for the fused op (the sum autograd would form otherwise).
#pragma omp parallel for schedule(static) if (N * C > (1 << 14))
    for (int64_t row = 0; row < N; ++row) {
      const T* x_row = x + row * C;
      const T* dy_row = grad_out + row * C;
      const T m = mean[row], s = rstd[row];
      const double dn_sum = sum_in_lanes(C, [&](int64_t c) { return double(dy_row[c]) * double(weight[c]); });
      const double dn_xhat_sum = sum_in_lanes(
          C, [&](int64_t c) { return double(dy_row[c]) * double(weight[c]) * double((x_row[c] - m) * s); });
      const T dn_mean = T(dn_sum / double(C)), dn_xhat_mean = T(dn_xhat_sum / double(C));
      T* dx_row = grad_x + row * C;
      for (int64_t c = 0; c < C; ++c) {
        const T xhat = (x_row[c] - m) * s;
        dx_row[c] = s * (dy_row[c] * weight[c] - dn_mean - xhat * dn_xhat_mean);
      }
      if (grad_residual) {
        const T* dr_row = grad_residual + row * C;
        for (int64_t c = 0; c < C; ++c) dx_row[c] = dr_row[c] + dx_row[c];
      }
    }
  }
  if (!grad_weight && !grad_bias) return;
  // dweight = Σ_rows dy · x̂,  dbias = Σ_rows dy: threads own column blocks, rows are summed in order.
  constexpr int64_t block = 64;
  const int64_t blocks = (C + block - 1) / block;
#pragma omp parallel for schedule(static) if (N * C > (1 << 14) && blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * block, width = std::min(block, C - begin);
    double weight_sums[block] = {}, bias_sums[block] = {};
    for (int64_t row = 0; row < N; ++row) {
      const T* x_row = x + row * C + begin;
      const T* dy_row = grad_out + row * C + begin;
      const T m = mean[row], s = rstd[row];
      for (int64_t c = 0; c < width; ++c) {
        weight_sums[c] += double(dy_row[c]) * double((x_row[c] - m) * s);
        bias_sums[c] += double(dy_row[c]);
      }
    }
    for (int64_t c = 0; c < width; ++c) {
      if (grad_weight) grad_weight[begin + c] = T(weight_sums[c]);
      if (grad_bias) grad_bias[begin + c] = T(bias_sums[c]);
    }
  }
}

#define INSTANTIATE(T)                                                                                         \
  template void layernorm_forward<T>(T*, T*, T*, T*, const T*, const T*, const T*, const T*, int64_t, int64_t, \
                                     double);                                                                 \
  template void layernorm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*, const T*, const T*,  \
                                      int64_t, int64_t);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace ops::cpu
