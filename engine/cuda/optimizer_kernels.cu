// Multi-tensor optimizer kernels (see optimizer_kernels.h). Plain CUDA C++: this file builds with
// nvcc into engine_cuda and with g++ under the kernel emulator into engine_cuda_emu.
//
// Every kernel takes a TensorTable by value: block b handles chunk block_to_chunk[b] of tensor
// block_to_tensor[b], its threads striding over the chunk's elements. The updates compute exactly
// what the CPU backend's loops compute, in the same order, so the two differ only where a compiler
// contracts a multiply-add.
#include <array>

#include "engine/cuda/check.h"
#include "engine/cuda/optimizer_kernels.h"
#include "engine/cuda/packed128.h"

namespace engine::cuda {

namespace {

constexpr int kThreads = 256;
// Blocks per table, and tensors per table for each number of operands per tensor (Depth): the
// table stays under the classic 4 KiB kernel-argument limit (PyTorch's sizes).
constexpr int kMaxTableBlocks = 320;
constexpr int max_table_tensors(int depth) { return depth == 1 ? 110 : depth == 2 ? 64 : depth == 3 ? 48 : 36; }

template <typename T, int Depth>
struct TensorTable {
  static constexpr int kMaxTensors = max_table_tensors(Depth);
  T* operands[Depth][kMaxTensors];
  int64_t sizes[kMaxTensors];
  int64_t first_chunk;  // global number (over all tables of one call) of this table's block 0
  unsigned char block_to_tensor[kMaxTableBlocks];
  int block_to_chunk[kMaxTableBlocks];
};
static_assert(sizeof(TensorTable<double, 1>) <= 4096 && sizeof(TensorTable<double, 2>) <= 4096 &&
              sizeof(TensorTable<double, 3>) <= 4096 && sizeof(TensorTable<double, 4>) <= 4096);

// The element range [begin, end) of this block's chunk, and its tensor's index in the table.
template <typename T, int Depth>
__device__ __forceinline__ int block_chunk(const TensorTable<T, Depth>& table, int64_t* begin, int64_t* end) {
  const int tensor = table.block_to_tensor[blockIdx.x];
  *begin = int64_t(table.block_to_chunk[blockIdx.x]) * kMultiTensorChunk;
  const int64_t chunk_end = *begin + kMultiTensorChunk;
  *end = chunk_end < table.sizes[tensor] ? chunk_end : table.sizes[tensor];
  return tensor;
}

// A thread per 128-bit pack of each of the four operands (engine/cuda/packed128.h); chunks start on
// a pack boundary, so a pack is short only at a tensor's end.
template <typename T>
__global__ void adamw_kernel(TensorTable<T, 4> table, AdamWStep c) {
  constexpr int P = Packed128<T>::size;
  static_assert(kMultiTensorChunk % P == 0);
  int64_t begin, end;
  const int tensor = block_chunk(table, &begin, &end);
  T* param = table.operands[0][tensor];
  const T* grad = table.operands[1][tensor];
  T* exp_avg = table.operands[2][tensor];
  T* exp_avg_sq = table.operands[3][tensor];
  const T decay = T(c.decay), beta1 = T(c.beta1), beta2 = T(c.beta2), eps = T(c.eps);
  const T one_minus_beta1 = T(1 - c.beta1), one_minus_beta2 = T(1 - c.beta2);
  const T step_size = T(c.step_size), bias_correction2_sqrt = T(c.bias_correction2_sqrt);
  for (int64_t i = begin + int64_t(threadIdx.x) * P; i < end; i += int64_t(blockDim.x) * P) {
    const int count = end - i < P ? int(end - i) : P;
    Packed128<T> p = load_pack(param + i, count), m = load_pack(exp_avg + i, count);
    Packed128<T> v = load_pack(exp_avg_sq + i, count);
    const Packed128<T> g = load_pack(grad + i, count);
    for (int k = 0; k < P; ++k) {
      m[k] = beta1 * m[k] + one_minus_beta1 * g[k];
      v[k] = beta2 * v[k] + one_minus_beta2 * g[k] * g[k];
      const T denom = sqrt(v[k]) / bias_correction2_sqrt + eps;
      p[k] = p[k] * decay - step_size * (m[k] / denom);
    }
    store_pack(exp_avg + i, m, count);
    store_pack(exp_avg_sq + i, v, count);
    store_pack(param + i, p, count);
  }
}

// SGD without momentum: p -= lr * (g + weight_decay * p).
template <typename T>
__global__ void sgd_kernel(TensorTable<T, 2> table, SgdStep c) {
  int64_t begin, end;
  const int tensor = block_chunk(table, &begin, &end);
  T* param = table.operands[0][tensor];
  const T* grad = table.operands[1][tensor];
  const T lr = T(c.lr), weight_decay = T(c.weight_decay);
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) param[i] -= lr * (grad[i] + weight_decay * param[i]);
}

// SGD with momentum (and optionally nesterov) in one pass.
template <typename T>
__global__ void sgd_momentum_kernel(TensorTable<T, 3> table, SgdStep c) {
  int64_t begin, end;
  const int tensor = block_chunk(table, &begin, &end);
  T* param = table.operands[0][tensor];
  const T* grad = table.operands[1][tensor];
  T* buffer = table.operands[2][tensor];
  const T lr = T(c.lr), weight_decay = T(c.weight_decay), momentum = T(c.momentum);
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const T d = grad[i] + weight_decay * param[i];
    const T b = momentum * buffer[i] + d;
    buffer[i] = b;
    param[i] -= lr * (c.nesterov ? d + momentum * b : b);
  }
}

// Every block computes the coefficient from the norm as the CPU backend does, so that a NaN norm
// (c not below 1) leaves the tensors as they are on both devices.
template <typename T>
__global__ void clip_by_norm_kernel(TensorTable<T, 1> table, const double* norm, double max_norm) {
  const double coefficient = max_norm / (*norm + 1e-6);
  if (!(coefficient < 1)) return;
  const T factor = T(coefficient);
  int64_t begin, end;
  const int tensor = block_chunk(table, &begin, &end);
  T* x = table.operands[0][tensor];
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) x[i] *= factor;
}

__global__ void square_root_kernel(const double* value, double* root) { *root = sqrt(*value); }

// Adds the block's kThreads values in shared memory with a fixed tree; thread 0 gets the sum.
__device__ __forceinline__ double block_tree_sum(double* shared, double value) {
  const int tid = int(threadIdx.x);
  shared[tid] = value;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (tid < stride) shared[tid] += shared[tid + stride];
    __syncthreads();
  }
  return shared[0];
}

// One partial per chunk: each thread sums its strided share in order, then a fixed tree.
template <typename T>
__global__ void sum_of_squares_kernel(TensorTable<T, 1> table, double* partials) {
  ENGINE_SHARED(double, shared, kThreads);
  int64_t begin, end;
  const int tensor = block_chunk(table, &begin, &end);
  const T* x = table.operands[0][tensor];
  double acc = 0.0;
  for (int64_t i = begin + threadIdx.x; i < end; i += kThreads) acc += double(x[i]) * double(x[i]);
  const double sum = block_tree_sum(shared, acc);
  if (threadIdx.x == 0) partials[table.first_chunk + blockIdx.x] = sum;
}

// One block: each thread sums partials tid, tid + kThreads, ... in order, then a fixed tree.
__global__ void sum_partials_kernel(const double* partials, int64_t count, double* total) {
  ENGINE_SHARED(double, shared, kThreads);
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += kThreads) acc += partials[i];
  const double sum = block_tree_sum(shared, acc);
  if (threadIdx.x == 0) *total = sum;
}

int64_t chunks_of(int64_t n) { return (n + kMultiTensorChunk - 1) / kMultiTensorChunk; }

// Fills tables with the chunks of the tensors, in list order, and calls launch(table, blocks) for
// each full table and for the last one. A tensor whose chunks overflow a table continues as the
// first tensor of the next. Empty tensors are skipped.
template <typename T, int Depth, typename Launch>
void multi_tensor_apply(const std::array<std::span<T* const>, size_t(Depth)>& lists, std::span<const int64_t> sizes,
                        Launch&& launch) {
  using Table = TensorTable<T, Depth>;
  Table table{};
  int tensors = 0, blocks = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] == 0) continue;
    for (int k = 0; k < Depth; ++k) table.operands[k][tensors] = lists[size_t(k)][i];
    table.sizes[tensors] = sizes[i];
    ++tensors;
    const int64_t chunks = chunks_of(sizes[i]);
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      table.block_to_tensor[blocks] = static_cast<unsigned char>(tensors - 1);
      table.block_to_chunk[blocks] = int(chunk);
      ++blocks;
      const bool last_chunk = chunk == chunks - 1;
      if (blocks < kMaxTableBlocks && !(last_chunk && tensors == Table::kMaxTensors)) continue;
      launch(table, blocks);
      table.first_chunk += blocks;
      blocks = 0;
      if (last_chunk) {
        tensors = 0;
      } else {
        for (int k = 0; k < Depth; ++k) table.operands[k][0] = table.operands[k][tensors - 1];
        table.sizes[0] = table.sizes[tensors - 1];
        tensors = 1;
      }
    }
  }
  if (blocks > 0) launch(table, blocks);
}

}  // namespace

template <typename T>
void adamw_update(std::span<T* const> params, std::span<T* const> grads, std::span<T* const> exp_avgs,
                  std::span<T* const> exp_avg_sqs, std::span<const int64_t> sizes, const AdamWStep& step,
                  cudaStream_t stream) {
  multi_tensor_apply<T, 4>({params, grads, exp_avgs, exp_avg_sqs}, sizes,
                           [&](const TensorTable<T, 4>& table, int blocks) {
                             ENGINE_LAUNCH(adamw_kernel<T>, blocks, kThreads, 0, stream, table, step);
                           });
}

template <typename T>
void sgd_update(std::span<T* const> params, std::span<T* const> grads, std::span<T* const> momentum_buffers,
                std::span<const int64_t> sizes, const SgdStep& step, cudaStream_t stream) {
  if (step.momentum > 0)
    multi_tensor_apply<T, 3>({params, grads, momentum_buffers}, sizes, [&](const TensorTable<T, 3>& table, int blocks) {
      ENGINE_LAUNCH(sgd_momentum_kernel<T>, blocks, kThreads, 0, stream, table, step);
    });
  else
    multi_tensor_apply<T, 2>({params, grads}, sizes, [&](const TensorTable<T, 2>& table, int blocks) {
      ENGINE_LAUNCH(sgd_kernel<T>, blocks, kThreads, 0, stream, table, step);
    });
}

template <typename T>
void clip_by_norm(std::span<T* const> tensors, std::span<const int64_t> sizes, const double* norm, double max_norm,
                  cudaStream_t stream) {
  multi_tensor_apply<T, 1>({tensors}, sizes, [&](const TensorTable<T, 1>& table, int blocks) {
    ENGINE_LAUNCH(clip_by_norm_kernel<T>, blocks, kThreads, 0, stream, table, norm, max_norm);
  });
}

void square_root(const double* value, double* root, cudaStream_t stream) {
  ENGINE_LAUNCH(square_root_kernel, 1, 1, 0, stream, value, root);
}

int64_t multi_tensor_chunk_count(std::span<const int64_t> sizes) {
  int64_t count = 0;
  for (int64_t n : sizes) count += chunks_of(n);
  return count;
}

template <typename T>
void sum_of_squares_partials(std::span<T* const> tensors, std::span<const int64_t> sizes, double* partials,
                             cudaStream_t stream) {
  multi_tensor_apply<T, 1>({tensors}, sizes, [&](const TensorTable<T, 1>& table, int blocks) {
    ENGINE_LAUNCH(sum_of_squares_kernel<T>, blocks, kThreads, 0, stream, table, partials);
  });
}

void sum_partials(const double* partials, int64_t count, double* total, cudaStream_t stream) {
  ENGINE_LAUNCH(sum_partials_kernel, 1, kThreads, 0, stream, partials, count, total);
}

#define ENGINE_INSTANTIATE_FOR_FLOAT(T)                                                                           \
  template void adamw_update<T>(std::span<T* const>, std::span<T* const>, std::span<T* const>, std::span<T* const>, \
                                std::span<const int64_t>, const AdamWStep&, cudaStream_t);                        \
  template void sgd_update<T>(std::span<T* const>, std::span<T* const>, std::span<T* const>,                      \
                              std::span<const int64_t>, const SgdStep&, cudaStream_t);                            \
  template void clip_by_norm<T>(std::span<T* const>, std::span<const int64_t>, const double*, double, cudaStream_t); \
  template void sum_of_squares_partials<T>(std::span<T* const>, std::span<const int64_t>, double*, cudaStream_t);
ENGINE_INSTANTIATE_FOR_FLOAT(float)
ENGINE_INSTANTIATE_FOR_FLOAT(double)
#undef ENGINE_INSTANTIATE_FOR_FLOAT

}  // namespace engine::cuda
