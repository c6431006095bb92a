// Indexing kernels (see ops/cuda/indexing.h). Plain CUDA C++: built by nvcc into `ops_cuda` and by g++
// under the kernel emulator into `ops_cuda_emu`.
//
// Copies and forward gathers walk their output elements with a grid-stride loop. The backward
// scatter-adds give each thread one (outer, inner) column of the gradient: it zeroes the column and
// then adds the output gradient's entries in index order. No two threads write the same element,
// so there are no atomics, and the order of the additions is the CPU's. The parallelism is
// outer · inner columns, plenty for the (rows, features) tensors these ops see.
#include <algorithm>

#include "engine/cuda/check.h"
#include "engine/cuda/grid_stride.h"
#include "ops/cuda/indexing.h"

namespace ops::cuda {

namespace {

using engine::cuda::grid_stride_start;
using engine::cuda::grid_stride_step;

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;

int64_t blocks_for(int64_t n) { return std::clamp<int64_t>((n + kThreads - 1) / kThreads, 1, kMaxBlocks); }


template <typename T>
__global__ void copy_rows_kernel(T* dst, int64_t dst_stride, const T* src, int64_t src_stride, int64_t rows,
                                 int64_t width) {
  for (int64_t i = grid_stride_start(); i < rows * width; i += grid_stride_step()) {
    const int64_t r = i / width, c = i - r * width;
    dst[r * dst_stride + c] = src[r * src_stride + c];
  }
}

// One block: the smallest position whose index lies outside [0, size), by a fixed min-tree.
template <typename I>
__global__ void find_out_of_range_kernel(int64_t* summary, const I* index, int64_t n, int64_t size) {
  ENGINE_SHARED(int64_t, first, kThreads);
  const int tid = int(threadIdx.x);
  int64_t local = n;
  for (int64_t i = tid; i < n && local == n; i += kThreads)
    if (int64_t(index[i]) < 0 || int64_t(index[i]) >= size) local = i;
  first[tid] = local;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (tid < stride && first[tid + stride] < first[tid]) first[tid] = first[tid + stride];
    __syncthreads();
  }
  if (tid != 0) return;
  summary[0] = first[0] < n ? first[0] : -1;
  summary[1] = first[0] < n ? int64_t(index[first[0]]) : 0;
}

template <typename T, typename I>
__global__ void index_select_forward_kernel(T* out, const T* x, const I* index, int64_t outer, int64_t D, int64_t J,
                                            int64_t inner) {
  for (int64_t i = grid_stride_start(); i < outer * J * inner; i += grid_stride_step()) {
    const int64_t row = i / inner, k = i - row * inner;
    const int64_t o = row / J, j = row - o * J;
    out[i] = x[(o * D + int64_t(index[j])) * inner + k];
  }
}

template <typename T, typename I>
__global__ void index_select_backward_kernel(T* grad_x, const T* grad_out, const I* index, int64_t outer, int64_t D,
                                             int64_t J, int64_t inner) {
  for (int64_t column = grid_stride_start(); column < outer * inner; column += grid_stride_step()) {
    const int64_t o = column / inner, k = column - o * inner;
    T* dst = grad_x + o * D * inner + k;
    const T* src = grad_out + o * J * inner + k;
    for (int64_t d = 0; d < D; ++d) dst[d * inner] = T(0);
    for (int64_t j = 0; j < J; ++j) dst[int64_t(index[j]) * inner] += src[j * inner];
  }
}

template <typename T, typename I>
__global__ void gather_forward_kernel(T* out, const T* x, const I* index, int64_t outer, int64_t D, int64_t J,
                                      int64_t inner) {
  for (int64_t i = grid_stride_start(); i < outer * J * inner; i += grid_stride_step()) {
    const int64_t row = i / inner, k = i - row * inner;
    const int64_t o = row / J;
    out[i] = x[(o * D + int64_t(index[i])) * inner + k];
  }
}

template <typename T, typename I>
__global__ void gather_backward_kernel(T* grad_x, const T* grad_out, const I* index, int64_t outer, int64_t D,
                                       int64_t J, int64_t inner) {
  for (int64_t column = grid_stride_start(); column < outer * inner; column += grid_stride_step()) {
    const int64_t o = column / inner, k = column - o * inner;
    T* dst = grad_x + o * D * inner + k;
    const T* src = grad_out + o * J * inner + k;
    const I* idx = index + o * J * inner + k;
    for (int64_t d = 0; d < D; ++d) dst[d * inner] = T(0);
    for (int64_t j = 0; j < J; ++j) dst[int64_t(idx[j * inner]) * inner] += src[j * inner];
  }
}

}  // namespace

template <typename T>
void copy_rows(T* dst, int64_t dst_stride, const T* src, int64_t src_stride, int64_t rows, int64_t width,
               cudaStream_t stream) {
  if (rows * width == 0) return;
  ENGINE_LAUNCH(copy_rows_kernel<T>, blocks_for(rows * width), kThreads, 0, stream, dst, dst_stride, src, src_stride,
                rows, width);
}

template <typename I>
void find_out_of_range(int64_t* summary, const I* index, int64_t n, int64_t size, cudaStream_t stream) {
  ENGINE_LAUNCH(find_out_of_range_kernel<I>, 1, kThreads, 0, stream, summary, index, n, size);
}

template <typename T, typename I>
void index_select_forward(T* out, const T* x, const I* index, int64_t outer, int64_t D, int64_t J, int64_t inner,
                          cudaStream_t stream) {
  if (outer * J * inner == 0) return;
  auto* kernel = index_select_forward_kernel<T, I>;
  ENGINE_LAUNCH(kernel, blocks_for(outer * J * inner), kThreads, 0, stream, out, x, index, outer, D, J, inner);
}

template <typename T, typename I>
void index_select_backward(T* grad_x, const T* grad_out, const I* index, int64_t outer, int64_t D, int64_t J,
                           int64_t inner, cudaStream_t stream) {
  if (outer * D * inner == 0) return;
  auto* kernel = index_select_backward_kernel<T, I>;
  ENGINE_LAUNCH(kernel, blocks_for(outer * inner), kThreads, 0, stream, grad_x, grad_out, index, outer, D, J, inner);
}

template <typename T, typename I>
void gather_forward(T* out, const T* x, const I* index, int64_t outer, int64_t D, int64_t J, int64_t inner,
                    cudaStream_t stream) {
  if (outer * J * inner == 0) return;
  auto* kernel = gather_forward_kernel<T, I>;
  ENGINE_LAUNCH(kernel, blocks_for(outer * J * inner), kThreads, 0, stream, out, x, index, outer, D, J, inner);
}

template <typename T, typename I>
void gather_backward(T* grad_x, const T* grad_out, const I* index, int64_t outer, int64_t D, int64_t J,
                     int64_t inner, cudaStream_t stream) {
  if (outer * D * inner == 0) return;
  auto* kernel = gather_backward_kernel<T, I>;
  ENGINE_LAUNCH(kernel, blocks_for(outer * inner), kThreads, 0, stream, grad_x, grad_out, index, outer, D, J, inner);
}

template void copy_rows<float>(float*, int64_t, const float*, int64_t, int64_t, int64_t, cudaStream_t);
template void copy_rows<double>(double*, int64_t, const double*, int64_t, int64_t, int64_t, cudaStream_t);
template void copy_rows<int32_t>(int32_t*, int64_t, const int32_t*, int64_t, int64_t, int64_t, cudaStream_t);
template void copy_rows<int64_t>(int64_t*, int64_t, const int64_t*, int64_t, int64_t, int64_t, cudaStream_t);
template void find_out_of_range<int32_t>(int64_t*, const int32_t*, int64_t, int64_t, cudaStream_t);
template void find_out_of_range<int64_t>(int64_t*, const int64_t*, int64_t, int64_t, cudaStream_t);
#define ENGINE_INSTANTIATE(T, I)                                                                                 \
  template void index_select_forward<T, I>(T*, const T*, const I*, int64_t, int64_t, int64_t, int64_t,           \
                                           cudaStream_t);                                                        \
  template void index_select_backward<T, I>(T*, const T*, const I*, int64_t, int64_t, int64_t, int64_t,          \
                                            cudaStream_t);                                                       \
  template void gather_forward<T, I>(T*, const T*, const I*, int64_t, int64_t, int64_t, int64_t, cudaStream_t);  \
  template void gather_backward<T, I>(T*, const T*, const I*, int64_t, int64_t, int64_t, int64_t, cudaStream_t);
ENGINE_INSTANTIATE(float, int32_t)
ENGINE_INSTANTIATE(float, int64_t)
ENGINE_INSTANTIATE(double, int32_t)
ENGINE_INSTANTIATE(double, int64_t)
#undef ENGINE_INSTANTIATE

}  // namespace ops::cuda
