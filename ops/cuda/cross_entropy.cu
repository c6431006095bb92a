// Fused cross-entropy kernels (see ops/cuda/cross_entropy.h). Plain CUDA C++: built by nvcc into
// `ops_cuda` and by g++ under the kernel emulator into `ops_cuda_emu`.
//
// One block per row: the threads take strided shares of the V classes, and fixed shared-memory
// trees combine the row's max, Σ exp and Σ x (the sums in double, as the CPU kernel). The reduction
// over rows is a second, single-block kernel over the per-row losses, so the total is the same on
// every run and every GPU.
#include <algorithm>

#include "engine/cuda/check.h"
#include "ops/cuda/cross_entropy.h"

namespace ops::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535;

struct Sum {
  template <typename T>
  __device__ T operator()(T a, T b) const { return a + b; }
};
struct Max {
  template <typename T>
  __device__ T operator()(T a, T b) const { return b > a ? b : a; }
};
struct Min {
  template <typename T>
  __device__ T operator()(T a, T b) const { return b < a ? b : a; }
};

// Combines one value per thread of a kThreads block through a fixed tree in `partial` (kThreads
// entries); every thread gets the result. Ends with a barrier, so `partial` may be reused at once.
template <typename T, typename Combine>
__device__ T block_reduce(T* partial, T value, Combine combine) {
  const int tid = int(threadIdx.x);
  partial[tid] = value;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (tid < stride) partial[tid] = combine(partial[tid], partial[tid + stride]);
    __syncthreads();
  }
  const T result = partial[0];
  __syncthreads();
  return result;
}

// losses, row_max, row_sum: (N); logits: (N, V); targets: (N). Invalid targets (reported by the
// summary kernel) get loss 0 and are never read through.
template <typename T, typename I>
__global__ void cross_entropy_forward_kernel(T* losses, T* row_max, T* row_sum, const T* logits, const I* targets,
                                             int64_t N, int64_t V, int64_t ignore_index, double label_smoothing) {
  ENGINE_SHARED(T, max_partial, kThreads);
  ENGINE_SHARED(double, sum_partial, kThreads);
  const int tid = int(threadIdx.x);
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const T* x = logits + n * V;
    T local_max = x[0];
    for (int64_t j = tid; j < V; j += kThreads) local_max = x[j] > local_max ? x[j] : local_max;
    const T max_value = block_reduce(max_partial, local_max, Max());
    double local_exp = 0.0, local_x = 0.0;
    for (int64_t j = tid; j < V; j += kThreads) {
      local_exp += double(exp(x[j] - max_value));
      local_x += double(x[j]);
    }
    const double sum_exp = block_reduce(sum_partial, local_exp, Sum());
    const double sum_x = block_reduce(sum_partial, local_x, Sum());
    if (tid != 0) continue;
    const double row_lse = double(max_value) + log(sum_exp);
    row_max[n] = max_value;
    row_sum[n] = T(sum_exp);
    const int64_t t = int64_t(targets[n]);
    if (t == ignore_index || t < 0 || t >= V) {
      losses[n] = T(0);
      continue;
    }
    const double nll = row_lse - double(x[t]);
    const double smooth = row_lse - sum_x / double(V);
    losses[n] = T((1.0 - label_smoothing) * nll + label_smoothing * smooth);
  }
}

// One block: counts the non-ignored targets, finds the first invalid one and reduces the losses.
// reduced: a scalar or null; summary: (3) as cross_entropy_forward documents.
template <typename T, typename I>
__global__ void cross_entropy_summary_kernel(T* reduced, int64_t* summary, const T* losses, const I* targets,
                                             int64_t N, int64_t V, int64_t ignore_index, bool mean) {
  ENGINE_SHARED(double, sum_partial, kThreads);
  ENGINE_SHARED(int64_t, index_partial, kThreads);
  const int tid = int(threadIdx.x);
  double local_total = 0.0;
  int64_t local_count = 0, local_invalid = N;
  for (int64_t n = tid; n < N; n += kThreads) {
    const int64_t t = int64_t(targets[n]);
    if (t == ignore_index) continue;
    ++local_count;
    local_total += double(losses[n]);
    if ((t < 0 || t >= V) && local_invalid == N) local_invalid = n;
  }
  const double total = block_reduce(sum_partial, local_total, Sum());
  const int64_t count = block_reduce(index_partial, local_count, Sum());
  const int64_t first_invalid = block_reduce(index_partial, local_invalid, Min());
  if (tid != 0) return;
  summary[0] = count;
  summary[1] = first_invalid < N ? first_invalid : -1;
  summary[2] = first_invalid < N ? int64_t(targets[first_invalid]) : 0;
  if (reduced) *reduced = T(mean ? (count > 0 ? total / double(count) : 0.0) : total);
}

// grad_logits, logits: (N, V); row_max, row_sum, targets: (N); row_scale: (N) or one value (stride 0).
template <typename T, typename I>
__global__ void cross_entropy_backward_kernel(T* grad_logits, const T* logits, const T* row_max, const T* row_sum,
                                              const I* targets, const T* row_scale, int64_t row_scale_stride,
                                              double scale_divisor, int64_t N, int64_t V, int64_t ignore_index,
                                              double label_smoothing) {
  const T uniform = T(label_smoothing / double(V)), on_target = T(1.0 - label_smoothing);
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    T* g = grad_logits + n * V;
    const int64_t t = int64_t(targets[n]);
    if (t == ignore_index) {
      for (int64_t j = threadIdx.x; j < V; j += kThreads) g[j] = T(0);
      continue;
    }
    const T* x = logits + n * V;
    // scale · softmax_j = exp(x_j − m) · (scale / Σ), the factor rounded once.
    const double scale_exact = double(row_scale[n * row_scale_stride]) / scale_divisor;
    const T scale = T(scale_exact), scale_over_sum = T(scale_exact / double(row_sum[n])), max_value = row_max[n];
    for (int64_t j = threadIdx.x; j < V; j += kThreads) {
      T value = scale_over_sum * exp(x[j] - max_value) - scale * uniform;
      if (j == t) value -= scale * on_target;
      g[j] = value;
    }
  }
}

}  // namespace

template <typename T, typename I>
void cross_entropy_forward(T* losses, T* row_max, T* row_sum, T* reduced, int64_t* summary, const T* logits,
                           const I* targets, int64_t N, int64_t V, int64_t ignore_index, double label_smoothing,
                           bool mean, cudaStream_t stream) {
  if (N > 0) {
    auto* forward = cross_entropy_forward_kernel<T, I>;
    ENGINE_LAUNCH(forward, std::min(N, kMaxBlocks), kThreads, 0, stream, losses, row_max, row_sum, logits, targets,
                  N, V, ignore_index, label_smoothing);
  }
  auto* summarize = cross_entropy_summary_kernel<T, I>;
  ENGINE_LAUNCH(summarize, 1, kThreads, 0, stream, reduced, summary, static_cast<const T*>(losses), targets, N, V,
                ignore_index, mean);
}

template <typename T, typename I>
void cross_entropy_backward(T* grad_logits, const T* logits, const T* row_max, const T* row_sum, const I* targets,
                            const T* row_scale, int64_t row_scale_stride, double scale_divisor, int64_t N, int64_t V,
                            int64_t ignore_index, double label_smoothing, cudaStream_t stream) {
  if (N == 0) return;
  auto* backward = cross_entropy_backward_kernel<T, I>;
  ENGINE_LAUNCH(backward, std::min(N, kMaxBlocks), kThreads, 0, stream, grad_logits, logits, row_max, row_sum,
                targets, row_scale, row_scale_stride, scale_divisor, N, V, ignore_index, label_smoothing);
}

#define ENGINE_INSTANTIATE(T, I)                                                                                \
  template void cross_entropy_forward<T, I>(T*, T*, T*, T*, int64_t*, const T*, const I*, int64_t, int64_t,    \
                                            int64_t, double, bool, cudaStream_t);                               \
  template void cross_entropy_backward<T, I>(T*, const T*, const T*, const T*, const I*, const T*, int64_t,      \
                                             double, int64_t, int64_t, int64_t, double, cudaStream_t);
ENGINE_INSTANTIATE(float, int32_t)
ENGINE_INSTANTIATE(float, int64_t)
ENGINE_INSTANTIATE(double, int32_t)
ENGINE_INSTANTIATE(double, int64_t)
#undef ENGINE_INSTANTIATE

}  // namespace ops::cuda
