// Fused multi-tensor kernels behind the CUDA backend's optimizer primitives (engine/backend.h):
// the AdamW and SGD updates, the sum of squares of a gradient norm, and scaling. One launch covers
// many tensors, as PyTorch's multi_tensor_apply does: the host cuts each tensor into chunks of
// kMultiTensorChunk elements, one block per chunk, and passes by value, as a kernel argument, a
// table of the tensors' pointers and sizes and of the (tensor, chunk) each block handles. So a step
// allocates no device memory and copies nothing; a list longer than one table holds is launched
// in as many tables as it needs.
//
// Lists are index-aligned: params[i], grads[i], ... are the operands of tensor i, which is
// contiguous with sizes[i] elements. The same source (optimizer_kernels.cu) builds with nvcc for
// GPUs and with g++ under the kernel emulator.
#pragma once

#include <cstdint>
#include <span>

#include "engine/backend.h"
#include "engine/cuda/cuda_api.h"

namespace engine::cuda {

// Elements handled by one block.
constexpr int64_t kMultiTensorChunk = 65536;

// AdamW on every tensor (engine/backend.h, AdamWStep): updates params, exp_avgs and exp_avg_sqs.
template <typename T>
void adamw_update(std::span<T* const> params, std::span<T* const> grads, std::span<T* const> exp_avgs,
                  std::span<T* const> exp_avg_sqs, std::span<const int64_t> sizes, const AdamWStep& step,
                  cudaStream_t stream);
// SGD on every tensor (SgdStep); momentum_buffers is used, and must be as long as params, only
// when step.momentum > 0.
template <typename T>
void sgd_update(std::span<T* const> params, std::span<T* const> grads, std::span<T* const> momentum_buffers,
                std::span<const int64_t> sizes, const SgdStep& step, cudaStream_t stream);
// With c = max_norm / (*norm + 1e-6) read on the device: x *= T(c) for every tensor x when c < 1.
template <typename T>
void clip_by_norm(std::span<T* const> tensors, std::span<const int64_t> sizes, const double* norm, double max_norm,
                  cudaStream_t stream);
// *root = sqrt(*value), on the device.
void square_root(const double* value, double* root, cudaStream_t stream);

// The deterministic norm is two launches: one partial sum per chunk, then one block adding the
// partials up in a fixed tree. Both orders depend only on the tensors' sizes.
// Number of chunks of tensors of these sizes: the length of the partials written below.
int64_t multi_tensor_chunk_count(std::span<const int64_t> sizes);
// partials[c] = sum of squares, in double, of chunk c of the tensors (chunks numbered in list order).
template <typename T>
void sum_of_squares_partials(std::span<T* const> tensors, std::span<const int64_t> sizes, double* partials,
                             cudaStream_t stream);
// *total = partials[0] + ... + partials[count - 1], in a fixed tree.
void sum_partials(const double* partials, int64_t count, double* total, cudaStream_t stream);

}  // namespace engine::cuda
