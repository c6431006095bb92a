// Table lookup kernels (see ops/cuda/embedding.h). Plain CUDA C++: built by nvcc into `ops_cuda` and by
// g++ under the kernel emulator into `ops_cuda_emu`.
//
// Legend: N = indices, V = table rows, C = channels. Threads run over channels (coalesced rows),
// grid.y over indices or buckets.
#include "ops/cuda/embedding.h"

#include <algorithm>

#include "engine/cuda/check.h"

namespace ops::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kBackwardThreads = 128;
constexpr int64_t kMaxGridY = 65535;
// Table rows are split into this many buckets (a power of two: a bucket is v & (kBuckets - 1)).
constexpr int64_t kBuckets = 64;

// One block: each thread finds the first bad position in its strided share, then a fixed
// shared-memory tree takes the minimum. result = -1 when every index is valid.
template <typename I>
__global__ void first_out_of_range_kernel(int64_t* result, const I* indices, int64_t N, int64_t V) {
  ENGINE_SHARED(int64_t, first_bad, kThreads);
  const int tid = int(threadIdx.x);
  int64_t bad = N;
  for (int64_t n = tid; n < N; n += kThreads)
    if (indices[n] < 0 || int64_t(indices[n]) >= V) {
      bad = n;
      break;
    }
  first_bad[tid] = bad;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (tid < stride && first_bad[tid + stride] < first_bad[tid]) first_bad[tid] = first_bad[tid + stride];
    __syncthreads();
  }
  if (tid == 0) result[0] = first_bad[0] < N ? first_bad[0] : -1;
}

template <typename T, typename I>
__global__ void embedding_forward_kernel(T* out, const T* table, const I* indices, int64_t N, int64_t C) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  for (int64_t n = blockIdx.y; n < N; n += gridDim.y) out[n * C + c] = table[int64_t(indices[n]) * C + c];
}

// Bucket blockIdx.y, column c per thread: every lookup of a row in the bucket is added, in index
// order, by this thread alone.
template <typename T, typename I>
__global__ void embedding_backward_kernel(T* grad_table, const T* grad_out, const I* indices, int64_t N, int64_t C) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const int64_t bucket = blockIdx.y;
  for (int64_t n = 0; n < N; ++n) {
    const int64_t v = int64_t(indices[n]);
    if ((v & (kBuckets - 1)) == bucket) grad_table[v * C + c] += grad_out[n * C + c];
  }
}

}  // namespace

template <typename I>
void first_out_of_range(int64_t* result, const I* indices, int64_t N, int64_t V, cudaStream_t stream) {
  ENGINE_LAUNCH(first_out_of_range_kernel<I>, 1, kThreads, 0, stream, result, indices, N, V);
}

template <typename T, typename I>
void embedding_forward(T* out, const T* table, const I* indices, int64_t N, int64_t C, cudaStream_t stream) {
  if (N == 0 || C == 0) return;
  const dim3 grid(unsigned((C + kThreads - 1) / kThreads), unsigned(std::min(N, kMaxGridY)));
  auto* kernel = embedding_forward_kernel<T, I>;
  ENGINE_LAUNCH(kernel, grid, kThreads, 0, stream, out, table, indices, N, C);
}

template <typename T, typename I>
void embedding_backward(T* grad_table, const T* grad_out, const I* indices, int64_t N, int64_t V, int64_t C,
                        cudaStream_t stream) {
  if (V == 0 || C == 0) return;
  CUDA_CHECK(cudaMemsetAsync(grad_table, 0, size_t(V * C) * sizeof(T), stream));
  if (N == 0) return;
  const dim3 grid(unsigned((C + kBackwardThreads - 1) / kBackwardThreads), unsigned(std::min(V, kBuckets)));
  auto* kernel = embedding_backward_kernel<T, I>;
  ENGINE_LAUNCH(kernel, grid, kBackwardThreads, 0, stream, grad_table, grad_out, indices, N, C);
}

template void first_out_of_range<int32_t>(int64_t*, const int32_t*, int64_t, int64_t, cudaStream_t);
template void first_out_of_range<int64_t>(int64_t*, const int64_t*, int64_t, int64_t, cudaStream_t);
#define INSTANTIATE(T, I)                                                                                 \
  template void embedding_forward<T, I>(T*, const T*, const I*, int64_t, int64_t, cudaStream_t);          \
  template void embedding_backward<T, I>(T*, const T*, const I*, int64_t, int64_t, int64_t, cudaStream_t);
INSTANTIATE(float, int32_t)
INSTANTIATE(float, int64_t)
INSTANTIATE(double, int32_t)
INSTANTIATE(double, int64_t)
#undef INSTANTIATE

}  // namespace ops::cuda
