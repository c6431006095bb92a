// KL-divergence kernels (see ops/cuda/kl_div.h). Plain CUDA C++: built by nvcc into `ops_cuda` and by
// g++ under the kernel emulator into `ops_cuda_emu`.
#include <algorithm>

#include "engine/cuda/check.h"
#include "ops/cuda/kl_div.h"

namespace ops::cuda {

namespace {

constexpr int kThreads = 256;
// Elements per block before the grid stops growing; the grid, and so the summation order, depends
// only on n.
constexpr int64_t kElementsPerBlock = 4 * kThreads;
constexpr int64_t kMaxPartials = 1024;
constexpr int64_t kMaxBlocks = 4096;

// Sums one value per thread of a kThreads block through a fixed tree in `partial`; thread 0 gets it.
__device__ double block_sum(double* partial, double value) {
  const int tid = int(threadIdx.x);
  partial[tid] = value;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (tid < stride) partial[tid] += partial[tid + stride];
    __syncthreads();
  }
  return partial[0];
}

// partials: (gridDim.x), block b's share of Σ exp(t)·(t − x) over a grid-stride walk of x, t: (n).
template <typename T>
__global__ void kl_div_partial_kernel(double* partials, const T* x, const T* t, int64_t n) {
  ENGINE_SHARED(double, partial, kThreads);
  double sum = 0.0;
  for (int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x; i < n; i += int64_t(gridDim.x) * kThreads)
    sum += exp(double(t[i])) * (double(t[i]) - double(x[i]));
  const double block_total = block_sum(partial, sum);
  if (threadIdx.x == 0) partials[blockIdx.x] = block_total;
}

// loss: a scalar = Σ partials: (count) / n, in one block.
template <typename T>
__global__ void kl_div_finish_kernel(T* loss, const double* partials, int64_t count, int64_t n) {
  ENGINE_SHARED(double, partial, kThreads);
  double sum = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += kThreads) sum += partials[i];
  const double total = block_sum(partial, sum);
  if (threadIdx.x == 0) *loss = T(n > 0 ? total / double(n) : 0.0);
}

template <typename T>
__global__ void kl_div_backward_kernel(T* grad_x, T* grad_t, const T* x, const T* t, const T* grad_loss, int64_t n) {
  const T s = T(double(grad_loss[0]) / double(n));
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const T p = exp(t[i]);
    if (grad_x) grad_x[i] = -s * p;
    if (grad_t) grad_t[i] = s * p * (t[i] - x[i] + T(1));
  }
}

}  // namespace

int64_t kl_div_partials(int64_t n) {
  return std::clamp<int64_t>((n + kElementsPerBlock - 1) / kElementsPerBlock, 1, kMaxPartials);
}

template <typename T>
void kl_div_forward(T* loss, double* partials, const T* x, const T* t, int64_t n, cudaStream_t stream) {
  const int64_t blocks = kl_div_partials(n);
  ENGINE_LAUNCH(kl_div_partial_kernel<T>, blocks, kThreads, 0, stream, partials, x, t, n);
  ENGINE_LAUNCH(kl_div_finish_kernel<T>, 1, kThreads, 0, stream, loss, static_cast<const double*>(partials), blocks,
                n);
}

template <typename T>
void kl_div_backward(T* grad_x, T* grad_t, const T* x, const T* t, const T* grad_loss, int64_t n,
                     cudaStream_t stream) {
  if (n == 0 || (!grad_x && !grad_t)) return;
  const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, kMaxBlocks);
  ENGINE_LAUNCH(kl_div_backward_kernel<T>, blocks, kThreads, 0, stream, grad_x, grad_t, x, t, grad_loss, n);
}

template void kl_div_forward<float>(float*, double*, const float*, const float*, int64_t, cudaStream_t);
template void kl_div_forward<double>(double*, double*, const double*, const double*, int64_t, cudaStream_t);
template void kl_div_backward<float>(float*, float*, const float*, const float*, const float*, int64_t,
                                     cudaStream_t);
template void kl_div_backward<double>(double*, double*, const double*, const double*, const double*, int64_t,
                                      cudaStream_t);

}  // namespace ops::cuda
