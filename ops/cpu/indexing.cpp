// Indexing kernels (see ops/cpu/indexing.h). Scatter-adds parallelise over (outer, inner block)
// pairs, each of which owns its output elements and adds the indices in order.
#include "ops/cpu/indexing.h"

#include <algorithm>
#include <cstring>

namespace ops::cpu {

namespace {
constexpr int64_t inner_block = 64;
}

template <typename T>
void copy_rows(T* dst, int64_t dst_stride, const T* src, int64_t src_stride, int64_t rows, int64_t width) {
#pragma omp parallel for schedule(static) if (rows * width > (1 << 15))
  for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * dst_stride, src + r * src_stride, size_t(width) * sizeof(T));
}

template <typename T, typename I>
void index_select_forward(T* out, const T* x, const I* index, int64_t outer, int64_t D, int64_t J, int64_t inner) {
#pragma omp parallel for collapse(2) schedule(static) if (outer * J * inner > (1 << 15))
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < J; ++j)
      std::memcpy(out + (o * J + j) * inner, x + (o * D + int64_t(index[j])) * inner, size_t(inner) * sizeof(T));
}

template <typename T, typename I>
void index_select_backward(T* grad_x, const T* grad_out, const I* index, int64_t outer, int64_t D, int64_t J,
                           int64_t inner) {
  std::memset(grad_x, 0, size_t(outer * D * inner) * sizeof(T));
  const int64_t blocks = (inner + inner_block - 1) / inner_block;
#pragma omp parallel for collapse(2) schedule(static) if (outer * J * inner > (1 << 15))
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t begin = b * inner_block, width = std::min(inner_block, inner - begin);
      for (int64_t j = 0; j < J; ++j) {
        T* dst = grad_x + (o * D + int64_t(index[j])) * inner + begin;
        const T* src = grad_out + (o * J + j) * inner + begin;
        for (int64_t k = 0; k < width; ++k) dst[k] += src[k];
      }
    }
}

template <typename T, typename I>
void gather_forward(T* out, const T* x, const I* index, int64_t outer, int64_t D, int64_t J, int64_t inner) {
#pragma omp parallel for schedule(static) if (outer * J * inner > (1 << 15))
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < J; ++j) {
      const int64_t row = (o * J + j) * inner;
      for (int64_t k = 0; k < inner; ++k) out[row + k] = x[(o * D + int64_t(index[row + k])) * inner + k];
    }
}

template <typename T, typename I>
void gather_backward(T* grad_x, const T* grad_out, const I* index, int64_t outer, int64_t D, int64_t J,
                     int64_t inner) {
  std::memset(grad_x, 0, size_t(outer * D * inner) * sizeof(T));
  const int64_t blocks = (inner + inner_block - 1) / inner_block;
#pragma omp parallel for collapse(2) schedule(static) if (outer * J * inner > (1 << 15))
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t begin = b * inner_block, end = std::min(inner, begin + inner_block);
      for (int64_t j = 0; j < J; ++j) {
        const int64_t row = (o * J + j) * inner;
        for (int64_t k = begin; k < end; ++k) grad_x[(o * D + int64_t(index[row + k])) * inner + k] += grad_out[row + k];
      }
    }
}

template void copy_rows<float>(float*, int64_t, const float*, int64_t, int64_t, int64_t);
template void copy_rows<double>(double*, int64_t, const double*, int64_t, int64_t, int64_t);
template void copy_rows<int32_t>(int32_t*, int64_t, const int32_t*, int64_t, int64_t, int64_t);
template void copy_rows<int64_t>(int64_t*, int64_t, const int64_t*, int64_t, int64_t, int64_t);
#define INSTANTIATE(T, I)                                                                                    \
  template void index_select_forward<T, I>(T*, const T*, const I*, int64_t, int64_t, int64_t, int64_t);      \
  template void index_select_backward<T, I>(T*, const T*, const I*, int64_t, int64_t, int64_t, int64_t);     \
  template void gather_forward<T, I>(T*, const T*, const I*, int64_t, int64_t, int64_t, int64_t);            \
  template void gather_backward<T, I>(T*, const T*, const I*, int64_t, int64_t, int64_t, int64_t);
INSTANTIATE(float, int32_t)
INSTANTIATE(float, int64_t)
INSTANTIATE(double, int32_t)
INSTANTIATE(double, int64_t)
#undef INSTANTIATE

}  // namespace ops::cpu
