// KL-divergence kernels (see ops/cpu/kl_div.h).
#include "ops/cpu/kl_div.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace ops::cpu {

template <typename T>
double kl_div_sum(const T* x, const T* t, int64_t n) {
  constexpr int64_t chunk = 4096;
  const int64_t chunks = (n + chunk - 1) / chunk;
  std::vector<double> partial(size_t(chunks), 0.0);
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    double sum = 0.0;
    for (int64_t i = c * chunk, end = std::min(n, i + chunk); i < end; ++i)
      sum += std::exp(double(t[i])) * (double(t[i]) - double(x[i]));
    partial[size_t(c)] = sum;
  }
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

template <typename T>
void kl_div_backward(T* grad_x, T* grad_t, const T* x, const T* t, double scale, int64_t n) {
  const T s = T(scale);
#pragma omp parallel for schedule(static) if (n > (1 << 15))
  for (int64_t i = 0; i < n; ++i) {
    const T p = std::exp(t[i]);
    if (grad_x) grad_x[i] = -s * p;
    if (grad_t) grad_t[i] = s * p * (t[i] - x[i] + T(1));
  }
}

template double kl_div_sum<float>(const float*, const float*, int64_t);
template double kl_div_sum<double>(const double*, const double*, int64_t);
template void kl_div_backward<float>(float*, float*, const float*, const float*, double, int64_t);
template void kl_div_backward<double>(double*, double*, const double*, const double*, double, int64_t);

}  // namespace ops::cpu
