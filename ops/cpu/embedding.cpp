// Table lookup kernels (see ops/cpu/embedding.h).
#include "ops/cpu/embedding.h"

#include <algorithm>
#include <cstring>

namespace ops::cpu {

template <typename I>
int64_t first_out_of_range(const I* indices, int64_t N, int64_t V) {
  for (int64_t n = 0; n < N; ++n)
    if (indices[n] < 0 || int64_t(indices[n]) >= V) return n;
  return -1;
}

template <typename T, typename I>
void embedding_forward(T* out, const T* table, const I* indices, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C > (1 << 15))
  for (int64_t n = 0; n < N; ++n) std::memcpy(out + n * C, table + int64_t(indices[n]) * C, size_t(C) * sizeof(T));
}

template <typename T, typename I>
void embedding_backward(T* grad_table, const T* grad_out, const I* indices, int64_t N, int64_t V, int64_t C) {
  std::memset(grad_table, 0, size_t(V * C) * sizeof(T));
  constexpr int64_t block = 32;
  const int64_t blocks = (C + block - 1) / block;
#pragma omp parallel for schedule(static) if (N * C > (1 << 15) && blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * block, width = std::min(block, C - begin);
    for (int64_t n = 0; n < N; ++n) {
      T* dst = grad_table + int64_t(indices[n]) * C + begin;
      const T* src = grad_out + n * C + begin;
      for (int64_t c = 0; c < width; ++c) dst[c] += src[c];
    }
  }
}

template int64_t first_out_of_range<int32_t>(const int32_t*, int64_t, int64_t);
template int64_t first_out_of_range<int64_t>(const int64_t*, int64_t, int64_t);
#define INSTANTIATE(T, I)                                                                     \
  template void embedding_forward<T, I>(T*, const T*, const I*, int64_t, int64_t);            \
  template void embedding_backward<T, I>(T*, const T*, const I*, int64_t, int64_t, int64_t);
INSTANTIATE(float, int32_t)
INSTANTIATE(float, int64_t)
INSTANTIATE(double, int32_t)
INSTANTIATE(double, int64_t)
#undef INSTANTIATE

}  // namespace ops::cpu
