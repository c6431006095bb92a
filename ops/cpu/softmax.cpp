// CPU softmax kernels; see ops/cpu/softmax.h. The last-dim case (I = 1) walks one contiguous row
// per task; otherwise a task handles a block of up to kColumnBlock columns of one outer slice with
// per-column running statistics, so memory is still read row by row.
#include "ops/cpu/softmax.h"

#include <algorithm>
#include <cmath>

#include "ops/cpu/vec_math.h"

namespace ops::cpu {

namespace {

constexpr int64_t kParallelThreshold = int64_t(1) << 14;  // elements below which one thread is faster
constexpr int64_t kColumnBlock = 64;

// One row of length n with unit stride.
template <typename T>
void softmax_row(T* y, const T* x, int64_t n, bool log) {
  const T max = max_of(x, n);
  if (log) {
    const T log_sum = static_cast<T>(std::log(sum_exp(x, max, n, static_cast<T*>(nullptr))));
    for (int64_t r = 0; r < n; ++r) y[r] = (x[r] - max) - log_sum;
  } else {
    const T inverse = static_cast<T>(1.0 / sum_exp(x, max, n, y));
    for (int64_t r = 0; r < n; ++r) y[r] *= inverse;
  }
}

// Columns [0, width) of an (R, inner) slab: the softmax of each column along R.
template <typename T>
void softmax_columns(T* y, const T* x, int64_t reduce, int64_t inner, int64_t width, bool log) {
  T max[kColumnBlock];
  double sum[kColumnBlock];
  std::copy(x, x + width, max);
  std::fill(sum, sum + width, 0.0);
  for (int64_t r = 1; r < reduce; ++r)
    for (int64_t j = 0; j < width; ++j) max[j] = std::max(max[j], x[r * inner + j]);
  for (int64_t r = 0; r < reduce; ++r)
    for (int64_t j = 0; j < width; ++j) {
      const T e = vexp(x[r * inner + j] - max[j]);
      if (!log) y[r * inner + j] = e;
      sum[j] += double(e);
    }
  T factor[kColumnBlock];  // log: the log of the sum; softmax: its inverse
  for (int64_t j = 0; j < width; ++j) factor[j] = static_cast<T>(log ? std::log(sum[j]) : 1.0 / sum[j]);
  for (int64_t r = 0; r < reduce; ++r)
    for (int64_t j = 0; j < width; ++j) {
      const int64_t k = r * inner + j;
      y[k] = log ? (x[k] - max[j]) - factor[j] : y[k] * factor[j];
    }
}

template <typename T>
void softmax_backward_row(T* grad_x, const T* grad_y, const T* y, int64_t n, bool log) {
  double dot = 0.0;
  if (log) {
    for (int64_t r = 0; r < n; ++r) dot += double(grad_y[r]);
    const T total = static_cast<T>(dot);
    for (int64_t r = 0; r < n; ++r) grad_x[r] = grad_y[r] - vexp(y[r]) * total;
  } else {
    for (int64_t r = 0; r < n; ++r) dot += double(grad_y[r]) * double(y[r]);
    const T total = static_cast<T>(dot);
    for (int64_t r = 0; r < n; ++r) grad_x[r] = y[r] * (grad_y[r] - total);
  }
}

template <typename T>
void softmax_backward_columns(T* grad_x, const T* grad_y, const T* y, int64_t reduce, int64_t inner, int64_t width,
                              bool log) {
  double dot[kColumnBlock];
  std::fill(dot, dot + width, 0.0);
  for (int64_t r = 0; r < reduce; ++r)
    for (int64_t j = 0; j < width; ++j) {
      const int64_t k = r * inner + j;
      dot[j] += log ? double(grad_y[k]) : double(grad_y[k]) * double(y[k]);
    }
  T total[kColumnBlock];
  for (int64_t j = 0; j < width; ++j) total[j] = static_cast<T>(dot[j]);
  for (int64_t r = 0; r < reduce; ++r)
    for (int64_t j = 0; j < width; ++j) {
      const int64_t k = r * inner + j;
      grad_x[k] = log ? grad_y[k] - vexp(y[k]) * total[j] : y[k] * (grad_y[k] - total[j]);
    }
}

}  // namespace

template <typename T>
void softmax_forward(T* y, const T* x, int64_t outer, int64_t reduce, int64_t inner, bool log) {
  if (inner == 1) {
#pragma omp parallel for schedule(static) if (outer * reduce > kParallelThreshold)
    for (int64_t o = 0; o < outer; ++o) softmax_row(y + o * reduce, x + o * reduce, reduce, log);
    return;
  }
  const int64_t blocks = (inner + kColumnBlock - 1) / kColumnBlock;
#pragma omp parallel for schedule(static) if (outer * reduce * inner > kParallelThreshold)
  for (int64_t t = 0; t < outer * blocks; ++t) {
    const int64_t o = t / blocks, i0 = (t % blocks) * kColumnBlock;
    const int64_t offset = o * reduce * inner + i0;
    softmax_columns(y + offset, x + offset, reduce, inner, std::min(kColumnBlock, inner - i0), log);
  }
}

template <typename T>
void softmax_backward(T* grad_x, const T* grad_y, const T* y, int64_t outer, int64_t reduce, int64_t inner,
                      bool log) {
  if (inner == 1) {
#pragma omp parallel for schedule(static) if (outer * reduce > kParallelThreshold)
    for (int64_t o = 0; o < outer; ++o)
      softmax_backward_row(grad_x + o * reduce, grad_y + o * reduce, y + o * reduce, reduce, log);
    return;
  }
  const int64_t blocks = (inner + kColumnBlock - 1) / kColumnBlock;
#pragma omp parallel for schedule(static) if (outer * reduce * inner > kParallelThreshold)
  for (int64_t t = 0; t < outer * blocks; ++t) {
    const int64_t o = t / blocks, i0 = (t % blocks) * kColumnBlock;
    const int64_t offset = o * reduce * inner + i0;
    softmax_backward_columns(grad_x + offset, grad_y + offset, y + offset, reduce, inner,
                             std::min(kColumnBlock, inner - i0), log);
  }
}

template void softmax_forward<float>(float*, const float*, int64_t, int64_t, int64_t, bool);
template void softmax_forward<double>(double*, const double*, int64_t, int64_t, int64_t, bool);
template void softmax_backward<float>(float*, const float*, const float*, int64_t, int64_t, int64_t, bool);
template void softmax_backward<double>(double*, const double*, const double*, int64_t, int64_t, int64_t, bool);

}  // namespace ops::cpu
