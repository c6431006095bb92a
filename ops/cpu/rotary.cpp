// CPU kernels of rotary position embedding, forward and backward (ops/cpu/rotary.h).
#include "ops/cpu/rotary.h"

#include <cmath>
#include <vector>

namespace ops::cpu {

template <typename T>
void rotary_forward(const T* x, const T* angles, T* out, int64_t B, int64_t H, int64_t Tn, int64_t D, int64_t P,
                    bool per_head) {
#pragma omp parallel for collapse(2) if (B * H * Tn * D > (1 << 14))
  for (int64_t bh = 0; bh < B * H; ++bh) {
    for (int64_t t = 0; t < Tn; ++t) {
      const int64_t h = bh % H;
      const T* theta = angles + ((per_head ? h * Tn : 0) + t) * P;
      const T* row = x + (bh * Tn + t) * D;
      T* o = out + (bh * Tn + t) * D;
      for (int64_t m = 0; m < P; ++m) {
        const T c = std::cos(theta[m]), s = std::sin(theta[m]);
        const T a = row[2 * m], b = row[2 * m + 1];
        o[2 * m] = a * c - b * s;
        o[2 * m + 1] = a * s + b * c;
      }
      for (int64_t d = 2 * P; d < D; ++d) o[d] = row[d];
    }
  }
}

template <typename T>
void rotary_backward(const T* grad_out, const T* x, const T* angles, T* grad_x, T* grad_angles, int64_t B, int64_t H,
                     int64_t Tn, int64_t D, int64_t P, bool per_head) {
  // Each angle row (h, t) gathers its gradient from every batch element (and head when shared)
  // in a fixed order, so the result does not depend on the thread count.
  const int64_t angle_rows = per_head ? H * Tn : Tn;
#pragma omp parallel for if (B * H * Tn * D > (1 << 14))
  for (int64_t row = 0; row < angle_rows; ++row) {
    const int64_t t = row % Tn;
    const int64_t h_begin = per_head ? row / Tn : 0, h_end = per_head ? h_begin + 1 : H;
    const T* theta = angles + row * P;
    std::vector<double> angle_grad(size_t(P), 0.0);
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t h = h_begin; h < h_end; ++h) {
        const int64_t offset = ((b * H + h) * Tn + t) * D;
        const T* g = grad_out + offset;
        const T* xr = x + offset;
        T* gx = grad_x + offset;
        for (int64_t m = 0; m < P; ++m) {
          const T c = std::cos(theta[m]), s = std::sin(theta[m]);
          const T ga = g[2 * m], gb = g[2 * m + 1], a = xr[2 * m], bb = xr[2 * m + 1];
          gx[2 * m] = ga * c + gb * s;
          gx[2 * m + 1] = -ga * s + gb * c;
          // ∂out[2m]/∂θ = −a·s − b·c,  ∂out[2m+1]/∂θ = a·c − b·s
          angle_grad[size_t(m)] += double(ga * (-a * s - bb * c) + gb * (a * c - bb * s));
        }
        for (int64_t d = 2 * P; d < D; ++d) gx[d] = g[d];
      }
    }
    if (grad_angles)
      for (int64_t m = 0; m < P; ++m) grad_angles[row * P + m] = T(angle_grad[size_t(m)]);
  }
}

template void rotary_forward<float>(const float*, const float*, float*, int64_t, int64_t, int64_t, int64_t, int64_t,
                                    bool);
template void rotary_forward<double>(const double*, const double*, double*, int64_t, int64_t, int64_t, int64_t,
                                     int64_t, bool);
template void rotary_backward<float>(const float*, const float*, const float*, float*, float*, int64_t, int64_t,
                                     int64_t, int64_t, int64_t, bool);
template void rotary_backward<double>(const double*, const double*, const double*, double*, double*, int64_t, int64_t,
                                      int64_t, int64_t, int64_t, bool);

}  // namespace ops::cpu
