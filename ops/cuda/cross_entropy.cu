// Fused cross-entropy kernels (see ops/cuda/cross_entropy.h). Plain CUDA C++: built by nvcc into
// `ops_cuda` and by g++ under the kernel emulator into `ops_cuda_emu`.
//
// One block per row: the threads take strided shares of the V classes, and fixed shared-memory
// trees combine the row's max, Σ exp and Σ x (the sums in double, as the CPU kernel). The targets
// are summarised (count, first invalid) by a single-block kernel before the rows, and the losses
// reduced by another after them, so the total is the same on every run and every GPU. The fused
// classifier is the same row kernel writing the gradient instead of the row statistics.
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

// One block: counts the non-ignored targets and finds the first invalid one; summary: (3) as
// cross_entropy_forward documents. It runs before the rows, whose gradient needs the mean's count.
template <typename I>
__global__ void cross_entropy_targets_kernel(int64_t* summary, const I* targets, int64_t N, int64_t V,
                                             int64_t ignore_index) {
  ENGINE_SHARED(int64_t, index_partial, kThreads);
  const int tid = int(threadIdx.x);
  int64_t local_count = 0, local_invalid = N;
  for (int64_t n = tid; n < N; n += kThreads) {
    const int64_t t = int64_t(targets[n]);
    if (t == ignore_index) continue;
    ++local_count;
    if ((t < 0 || t >= V) && local_invalid == N) local_invalid = n;
  }
  const int64_t count = block_reduce(index_partial, local_count, Sum());
  const int64_t first_invalid = block_reduce(index_partial, local_invalid, Min());
  if (tid != 0) return;
  summary[0] = count;
  summary[1] = first_invalid < N ? first_invalid : -1;
  summary[2] = first_invalid < N ? int64_t(targets[first_invalid]) : 0;
}

// losses: (N); logits: (N, V); targets: (N). Invalid targets (reported by the targets kernel) get
// loss 0 and are never read through. Either row_max and row_sum (N) are saved for the backward, or
// (the fused classifier) grad_logits: (N, V) gets the gradient for an upstream gradient of 1 —
// scaled by 1 / summary[0] for the mean — written after a barrier that follows the last read of the
// row's loss terms, so grad_logits may be logits itself.
template <typename T, typename I>
__global__ void cross_entropy_rows_kernel(T* losses, T* row_max, T* row_sum, T* grad_logits, const T* logits,
                                          const I* targets, const int64_t* summary, bool mean, int64_t N, int64_t V,
                                          int64_t ignore_index, double label_smoothing) {
  ENGINE_SHARED(T, max_partial, kThreads);
  ENGINE_SHARED(double, sum_partial, kThreads);
  const int tid = int(threadIdx.x);
  const T uniform = T(label_smoothing / double(V)), on_target = T(1.0 - label_smoothing);
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
    const int64_t t = int64_t(targets[n]);
    const bool scored = t != ignore_index && t >= 0 && t < V;
    if (tid == 0) {
      if (row_max) {
        row_max[n] = max_value;
        row_sum[n] = T(sum_exp);
      }
      const double row_lse = double(max_value) + log(sum_exp);
      const double nll = scored ? row_lse - double(x[t]) : 0.0;
      const double smooth = row_lse - sum_x / double(V);
      losses[n] = scored ? T((1.0 - label_smoothing) * nll + label_smoothing * smooth) : T(0);
    }
    if (!grad_logits) continue;
    __syncthreads();  // thread 0 has read x[t]: the gradient may now overwrite the row
    T* g = grad_logits + n * V;
    if (!scored) {
      for (int64_t j = tid; j < V; j += kThreads) g[j] = T(0);
      continue;
    }
    // The roundings of cross_entropy_backward_kernel with row_scale 1: the same bits.
    const double scale_exact = mean ? 1.0 / double(summary[0]) : 1.0;  // summary[0] >= 1: this row is scored
    const T scale = T(scale_exact), scale_over_sum = T(scale_exact / double(T(sum_exp)));
    for (int64_t j = tid; j < V; j += kThreads) {
      T value = scale_over_sum * exp(x[j] - max_value) - scale * uniform;
      if (j == t) value -= scale * on_target;
      g[j] = value;
    }
  }
}

// One block: reduced = the sum of the per-row losses (ignored rows hold 0), divided by the count in
// summary[0] for the mean (0 when there is none).
template <typename T>
__global__ void cross_entropy_reduce_kernel(T* reduced, const T* losses, const int64_t* summary, int64_t N, bool mean) {
  ENGINE_SHARED(double, sum_partial, kThreads);
  const int tid = int(threadIdx.x);
  double local_total = 0.0;
  for (int64_t n = tid; n < N; n += kThreads) local_total += double(losses[n]);
  const double total = block_reduce(sum_partial, local_total, Sum());
  if (tid != 0) return;
  const int64_t count = summary[0];
  *reduced = T(mean ? (count > 0 ? total / double(count) : 0.0) : total);
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

// The fused classifier's backward: grad_logits: (N, V) row n *= row_scale[n · row_scale_stride],
// except ignored rows (0) and rows whose scale is exactly 1, which the block leaves without a read.
template <typename T, typename I>
__global__ void scale_gradient_rows_kernel(T* grad_logits, const I* targets, const T* row_scale,
                                           int64_t row_scale_stride, int64_t N, int64_t V, int64_t ignore_index) {
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const T scale = row_scale[n * row_scale_stride];
    if (scale == T(1) || int64_t(targets[n]) == ignore_index) continue;
    T* g = grad_logits + n * V;
    for (int64_t j = threadIdx.x; j < V; j += kThreads) g[j] *= scale;
  }
}

}  // namespace

template <typename T, typename I>
void cross_entropy_forward(T* losses, T* row_max, T* row_sum, T* grad_logits, T* reduced, int64_t* summary,
                           const T* logits, const I* targets, int64_t N, int64_t V, int64_t ignore_index,
                           double label_smoothing, bool mean, cudaStream_t stream) {
  auto* check_targets = cross_entropy_targets_kernel<I>;
  ENGINE_LAUNCH(check_targets, 1, kThreads, 0, stream, summary, targets, N, V, ignore_index);
  if (N > 0) {
    auto* rows = cross_entropy_rows_kernel<T, I>;
    ENGINE_LAUNCH(rows, std::min(N, kMaxBlocks), kThreads, 0, stream, losses, row_max, row_sum, grad_logits, logits,
                  targets, static_cast<const int64_t*>(summary), mean, N, V, ignore_index, label_smoothing);
  }
  if (!reduced) return;
  auto* reduce = cross_entropy_reduce_kernel<T>;
  ENGINE_LAUNCH(reduce, 1, kThreads, 0, stream, reduced, static_cast<const T*>(losses),
                static_cast<const int64_t*>(summary), N, mean);
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

template <typename T, typename I>
void scale_gradient_rows(T* grad_logits, const I* targets, const T* row_scale, int64_t row_scale_stride, int64_t N,
                         int64_t V, int64_t ignore_index, cudaStream_t stream) {
  if (N == 0) return;
  auto* scale = scale_gradient_rows_kernel<T, I>;
  ENGINE_LAUNCH(scale, std::min(N, kMaxBlocks), kThreads, 0, stream, grad_logits, targets, row_scale,
                row_scale_stride, N, V, ignore_index);
}

#define ENGINE_INSTANTIATE(T, I)                                                                                     \
  template void cross_entropy_forward<T, I>(T*, T*, T*, T*, T*, int64_t*, const T*, const I*, int64_t, int64_t,      \
                                            int64_t, double, bool, cudaStream_t);                                    \
  template void cross_entropy_backward<T, I>(T*, const T*, const T*, const T*, const I*, const T*, int64_t,          \
                                             double, int64_t, int64_t, int64_t, double, cudaStream_t);               \
  template void scale_gradient_rows<T, I>(T*, const I*, const T*, int64_t, int64_t, int64_t, int64_t, cudaStream_t);
ENGINE_INSTANTIATE(float, int32_t)
ENGINE_INSTANTIATE(float, int64_t)
ENGINE_INSTANTIATE(double, int32_t)
ENGINE_INSTANTIATE(double, int64_t)
#undef ENGINE_INSTANTIATE

}  // namespace ops::cuda
