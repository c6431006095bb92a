// CUDA reduction kernels (see ops/cuda/reduce.h).
//
// Row reductions (I = 1): one block per row; each thread covers r = tid, tid + 256, ... in order,
// then a fixed shared-memory tree combines the threads. Column reductions (I > 1): a block covers
// 32 adjacent columns of one outer slice (coalesced reads) with 8 rows of threads striding over R,
// combined by a fixed tree over the 8 partials. Short rows (R < 32) take one thread per output.
// The combination order depends on the shape alone, never on the grid.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "engine/cuda/check.h"
#include "engine/cuda/grid_stride.h"
#include "ops/cuda/reduce.h"

namespace ops::cuda {

namespace {

using engine::cuda::grid_stride_start;
using engine::cuda::grid_stride_step;

constexpr int kThreads = 256;
constexpr int kColumns = 32;                  // columns per block in the column kernels
constexpr int kColumnRows = kThreads / kColumns;  // threads striding over R per column
constexpr int64_t kMaxBlocks = 8192;
constexpr int64_t kShortRow = 32;             // below this R, one thread per output row

int64_t blocks_for(int64_t n) {
  return std::max<int64_t>(1, std::min<int64_t>((n + kThreads - 1) / kThreads, kMaxBlocks));
}


// True when (v, r) should replace (best, best_r): larger, or NaN over a number, or equal (both
// NaN included) at an earlier position. Makes the combination of partial maxima order-free.
template <typename T>
__device__ __forceinline__ bool beats(T v, int64_t r, T best, int64_t best_r) {
  const bool v_nan = v != v, best_nan = best != best;
  if (v_nan != best_nan) return v_nan;
  if (v_nan || v == best) return r < best_r;
  return v > best;
}

// One thread per output row, R < kShortRow (or any R when rows are many and short).
template <typename T>
__global__ void sum_rows_serial_kernel(T* out, const T* x, int64_t outer, int64_t reduce, double divisor) {
  for (int64_t o = grid_stride_start(); o < outer; o += grid_stride_step()) {
    const T* row = x + o * reduce;
    double acc = 0.0;
    for (int64_t r = 0; r < reduce; ++r) acc += double(row[r]);
    out[o] = static_cast<T>(acc / divisor);
  }
}

// One block per row.
template <typename T>
__global__ void sum_rows_kernel(T* out, const T* x, int64_t outer, int64_t reduce, double divisor) {
  ENGINE_SHARED(double, partial, kThreads);
  const int tid = int(threadIdx.x);
  for (int64_t o = blockIdx.x; o < outer; o += gridDim.x) {
    const T* row = x + o * reduce;
    double acc = 0.0;
    for (int64_t r = tid; r < reduce; r += kThreads) acc += double(row[r]);
    partial[tid] = acc;
    __syncthreads();
    for (int stride = kThreads / 2; stride > 0; stride /= 2) {
      if (tid < stride) partial[tid] += partial[tid + stride];
      __syncthreads();
    }
    if (tid == 0) out[o] = static_cast<T>(partial[0] / divisor);
    __syncthreads();  // partial is reused by the next row
  }
}

// Block (kColumns, kColumnRows) per tile of kColumns columns of one outer slice.
template <typename T>
__global__ void sum_columns_kernel(T* out, const T* x, int64_t outer, int64_t reduce, int64_t inner,
                                   double divisor) {
  ENGINE_SHARED_2D(double, partial, kColumnRows, kColumns);
  const int tx = int(threadIdx.x), ty = int(threadIdx.y);
  const int64_t tiles = (inner + kColumns - 1) / kColumns;
  for (int64_t tile = blockIdx.x; tile < outer * tiles; tile += gridDim.x) {
    const int64_t o = tile / tiles, i = (tile % tiles) * kColumns + tx;
    double acc = 0.0;
    if (i < inner)
      for (int64_t r = ty; r < reduce; r += kColumnRows) acc += double(x[(o * reduce + r) * inner + i]);
    partial[ty][tx] = acc;
    __syncthreads();
    for (int stride = kColumnRows / 2; stride > 0; stride /= 2) {
      if (ty < stride) partial[ty][tx] += partial[ty + stride][tx];
      __syncthreads();
    }
    if (ty == 0 && i < inner) out[o * inner + i] = static_cast<T>(partial[0][tx] / divisor);
    __syncthreads();
  }
}

// One thread per output (o, i), scanning R in order: the first maximum wins by construction.
template <typename T>
__global__ void max_serial_kernel(T* out, int64_t* argmax, const T* x, int64_t outer, int64_t reduce,
                                  int64_t inner) {
  for (int64_t k = grid_stride_start(); k < outer * inner; k += grid_stride_step()) {
    const int64_t o = k / inner, i = k % inner;
    const T* column = x + o * reduce * inner + i;
    T best = column[0];
    int64_t best_r = 0;
    for (int64_t r = 1; r < reduce; ++r)
      if (beats(column[r * inner], r, best, best_r)) {
        best = column[r * inner];
        best_r = r;
      }
    out[k] = best;
    argmax[k] = best_r;
  }
}

// One block per row (I = 1): per-thread maxima over strided shares, then a tree of (value, index).
template <typename T>
__global__ void max_rows_kernel(T* out, int64_t* argmax, const T* x, int64_t outer, int64_t reduce) {
  ENGINE_SHARED(T, best, kThreads);
  ENGINE_SHARED(int64_t, best_r, kThreads);
  const int tid = int(threadIdx.x);
  for (int64_t o = blockIdx.x; o < outer; o += gridDim.x) {
    const T* row = x + o * reduce;
    // Threads past the row's end start from element 0, which never wins over itself at r = 0.
    T my_best = row[0];
    int64_t my_r = 0;
    for (int64_t r = tid; r < reduce; r += kThreads)
      if (beats(row[r], r, my_best, my_r)) {
        my_best = row[r];
        my_r = r;
      }
    best[tid] = my_best;
    best_r[tid] = my_r;
    __syncthreads();
    for (int stride = kThreads / 2; stride > 0; stride /= 2) {
      if (tid < stride && beats(best[tid + stride], best_r[tid + stride], best[tid], best_r[tid])) {
        best[tid] = best[tid + stride];
        best_r[tid] = best_r[tid + stride];
      }
      __syncthreads();
    }
    if (tid == 0) {
      out[o] = best[0];
      argmax[o] = best_r[0];
    }
    __syncthreads();
  }
}

template <typename T>
__global__ void max_backward_kernel(T* grad_x, const T* grad_out, const int64_t* argmax, int64_t outer,
                                    int64_t reduce, int64_t inner) {
  const int64_t n = outer * reduce * inner;
  for (int64_t k = grid_stride_start(); k < n; k += grid_stride_step()) {
    const int64_t i = k % inner, r = (k / inner) % reduce, o = k / (inner * reduce);
    const int64_t kept = o * inner + i;
    grad_x[k] = argmax[kept] == r ? grad_out[kept] : T(0);
  }
}

}  // namespace

template <typename T>
void sum_forward(T* out, const T* x, int64_t outer, int64_t reduce, int64_t inner, double divisor,
                 cudaStream_t stream) {
  if (outer == 0 || inner == 0) return;
  if (inner == 1 && reduce < kShortRow) {
    ENGINE_LAUNCH(sum_rows_serial_kernel<T>, blocks_for(outer), kThreads, 0, stream, out, x, outer, reduce, divisor);
  } else if (inner == 1) {
    ENGINE_LAUNCH(sum_rows_kernel<T>, std::min(outer, kMaxBlocks), kThreads, 0, stream, out, x, outer, reduce,
                  divisor);
  } else {
    const int64_t tiles = outer * ((inner + kColumns - 1) / kColumns);
    ENGINE_LAUNCH(sum_columns_kernel<T>, std::min(tiles, kMaxBlocks), dim3(kColumns, kColumnRows), 0, stream, out, x,
                  outer, reduce, inner, divisor);
  }
}

template <typename T>
void max_forward(T* out, int64_t* argmax, const T* x, int64_t outer, int64_t reduce, int64_t inner,
                 cudaStream_t stream) {
  if (outer == 0 || inner == 0) return;
  if (inner == 1 && reduce >= kShortRow)
    ENGINE_LAUNCH(max_rows_kernel<T>, std::min(outer, kMaxBlocks), kThreads, 0, stream, out, argmax, x, outer,
                  reduce);
  else
    ENGINE_LAUNCH(max_serial_kernel<T>, blocks_for(outer * inner), kThreads, 0, stream, out, argmax, x, outer, reduce,
                  inner);
}

template <typename T>
void max_backward(T* grad_x, const T* grad_out, const int64_t* argmax, int64_t outer, int64_t reduce, int64_t inner,
                  cudaStream_t stream) {
  const int64_t n = outer * reduce * inner;
  if (n == 0) return;
  ENGINE_LAUNCH(max_backward_kernel<T>, blocks_for(n), kThreads, 0, stream, grad_x, grad_out, argmax, outer, reduce,
                inner);
}

#define ENGINE_INSTANTIATE(T)                                                                             \
  template void sum_forward<T>(T*, const T*, int64_t, int64_t, int64_t, double, cudaStream_t);           \
  template void max_forward<T>(T*, int64_t*, const T*, int64_t, int64_t, int64_t, cudaStream_t);         \
  template void max_backward<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t, cudaStream_t);
ENGINE_INSTANTIATE(float)
ENGINE_INSTANTIATE(double)
#undef ENGINE_INSTANTIATE

}  // namespace ops::cuda
