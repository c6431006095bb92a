// CUDA softmax kernels (see ops/cuda/softmax.h).
//
// Last-dim rows (I = 1, R >= 32): one block per row. Each thread covers r = tid, tid + 128, ... in
// order, and fixed shared-memory trees combine the threads' maxima and double sums, so the result
// depends on the shape alone. Other dims, and short rows: one thread per (o, i) column walking R
// in order (reads are coalesced across i, the contiguous dimension).
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "engine/cuda/check.h"
#include "engine/cuda/grid_stride.h"
#include "ops/cuda/softmax.h"

namespace ops::cuda {

namespace {

using engine::cuda::grid_stride_start;
using engine::cuda::grid_stride_step;

constexpr int kRowThreads = 128;
constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 8192;
constexpr int64_t kShortRow = 32;  // below this R, last-dim rows also take one thread each

int64_t blocks_for(int64_t n) {
  return std::max<int64_t>(1, std::min<int64_t>((n + kThreads - 1) / kThreads, kMaxBlocks));
}


// Combines partial[0..kRowThreads) into partial[0] with a fixed tree (max or sum); every thread of
// the block calls it and may read partial[0] afterwards.
__device__ __forceinline__ void block_tree(double* partial, bool take_max) {
  const int tid = int(threadIdx.x);
  __syncthreads();
  for (int stride = kRowThreads / 2; stride > 0; stride /= 2) {
    if (tid < stride)
      partial[tid] = take_max ? fmax(partial[tid], partial[tid + stride]) : partial[tid] + partial[tid + stride];
    __syncthreads();
  }
}

template <typename T>
__global__ void softmax_rows_kernel(T* y, const T* x, int64_t outer, int64_t reduce, bool log) {
  ENGINE_SHARED(double, partial, kRowThreads);
  const int tid = int(threadIdx.x);
  for (int64_t o = blockIdx.x; o < outer; o += gridDim.x) {
    const T* row = x + o * reduce;
    T* out = y + o * reduce;
    T row_max = row[0];
    for (int64_t r = tid; r < reduce; r += kRowThreads) row_max = row[r] > row_max ? row[r] : row_max;
    partial[tid] = double(row_max);
    block_tree(partial, true);
    row_max = T(partial[0]);
    __syncthreads();  // everyone has read the maximum before partial is reused
    double sum = 0.0;
    for (int64_t r = tid; r < reduce; r += kRowThreads) sum += double(exp(row[r] - row_max));
    partial[tid] = sum;
    block_tree(partial, false);
    const double total = partial[0];
    if (log) {
      const T log_sum = static_cast<T>(::log(total));
      for (int64_t r = tid; r < reduce; r += kRowThreads) out[r] = (row[r] - row_max) - log_sum;
    } else {
      const T inverse = static_cast<T>(1.0 / total);
      for (int64_t r = tid; r < reduce; r += kRowThreads) out[r] = exp(row[r] - row_max) * inverse;
    }
    __syncthreads();  // partial is reused by the next row
  }
}

template <typename T>
__global__ void softmax_columns_kernel(T* y, const T* x, int64_t outer, int64_t reduce, int64_t inner, bool log) {
  for (int64_t k = grid_stride_start(); k < outer * inner; k += grid_stride_step()) {
    const int64_t o = k / inner, i = k % inner;
    const T* column = x + o * reduce * inner + i;
    T* out = y + o * reduce * inner + i;
    T column_max = column[0];
    for (int64_t r = 1; r < reduce; ++r) column_max = column[r * inner] > column_max ? column[r * inner] : column_max;
    double sum = 0.0;
    for (int64_t r = 0; r < reduce; ++r) sum += double(exp(column[r * inner] - column_max));
    if (log) {
      const T log_sum = static_cast<T>(::log(sum));
      for (int64_t r = 0; r < reduce; ++r) out[r * inner] = (column[r * inner] - column_max) - log_sum;
    } else {
      const T inverse = static_cast<T>(1.0 / sum);
      for (int64_t r = 0; r < reduce; ++r) out[r * inner] = exp(column[r * inner] - column_max) * inverse;
    }
  }
}

template <typename T>
__global__ void softmax_backward_rows_kernel(T* grad_x, const T* grad_y, const T* y, int64_t outer, int64_t reduce,
                                             bool log) {
  ENGINE_SHARED(double, partial, kRowThreads);
  const int tid = int(threadIdx.x);
  for (int64_t o = blockIdx.x; o < outer; o += gridDim.x) {
    const T* g = grad_y + o * reduce;
    const T* yr = y + o * reduce;
    T* gx = grad_x + o * reduce;
    double dot = 0.0;
    for (int64_t r = tid; r < reduce; r += kRowThreads) dot += log ? double(g[r]) : double(g[r]) * double(yr[r]);
    partial[tid] = dot;
    block_tree(partial, false);
    const T total = static_cast<T>(partial[0]);
    for (int64_t r = tid; r < reduce; r += kRowThreads)
      gx[r] = log ? g[r] - exp(yr[r]) * total : yr[r] * (g[r] - total);
    __syncthreads();
  }
}

template <typename T>
__global__ void softmax_backward_columns_kernel(T* grad_x, const T* grad_y, const T* y, int64_t outer,
                                                int64_t reduce, int64_t inner, bool log) {
  for (int64_t k = grid_stride_start(); k < outer * inner; k += grid_stride_step()) {
    const int64_t offset = (k / inner) * reduce * inner + k % inner;
    const T* g = grad_y + offset;
    const T* yc = y + offset;
    T* gx = grad_x + offset;
    double dot = 0.0;
    for (int64_t r = 0; r < reduce; ++r)
      dot += log ? double(g[r * inner]) : double(g[r * inner]) * double(yc[r * inner]);
    const T total = static_cast<T>(dot);
    for (int64_t r = 0; r < reduce; ++r) {
      const int64_t j = r * inner;
      gx[j] = log ? g[j] - exp(yc[j]) * total : yc[j] * (g[j] - total);
    }
  }
}

}  // namespace

template <typename T>
void softmax_forward(T* y, const T* x, int64_t outer, int64_t reduce, int64_t inner, bool log, cudaStream_t stream) {
  if (outer == 0 || inner == 0) return;
  if (inner == 1 && reduce >= kShortRow)
    ENGINE_LAUNCH(softmax_rows_kernel<T>, std::min(outer, kMaxBlocks), kRowThreads, 0, stream, y, x, outer, reduce,
                  log);
  else
    ENGINE_LAUNCH(softmax_columns_kernel<T>, blocks_for(outer * inner), kThreads, 0, stream, y, x, outer, reduce,
                  inner, log);
}

template <typename T>
void softmax_backward(T* grad_x, const T* grad_y, const T* y, int64_t outer, int64_t reduce, int64_t inner, bool log,
                      cudaStream_t stream) {
  if (outer == 0 || inner == 0) return;
  if (inner == 1 && reduce >= kShortRow)
    ENGINE_LAUNCH(softmax_backward_rows_kernel<T>, std::min(outer, kMaxBlocks), kRowThreads, 0, stream, grad_x, grad_y,
                  y, outer, reduce, log);
  else
    ENGINE_LAUNCH(softmax_backward_columns_kernel<T>, blocks_for(outer * inner), kThreads, 0, stream, grad_x, grad_y,
                  y, outer, reduce, inner, log);
}

#define ENGINE_INSTANTIATE(T)                                                                                  \
  template void softmax_forward<T>(T*, const T*, int64_t, int64_t, int64_t, bool, cudaStream_t);              \
  template void softmax_backward<T>(T*, const T*, const T*, int64_t, int64_t, int64_t, bool, cudaStream_t);
ENGINE_INSTANTIATE(float)
ENGINE_INSTANTIATE(double)
#undef ENGINE_INSTANTIATE

}  // namespace ops::cuda
