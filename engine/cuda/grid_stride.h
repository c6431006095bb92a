// Device-side index helpers shared by the grid-stride kernels of the backend and the ops: where a
// thread starts, how far it steps, and the element offsets of a linear index in strided operands.
#pragma once

#include <cstdint>

#include "engine/cuda/backend_kernels.h"
#include "engine/cuda/cuda_api.h"

namespace engine::cuda {

__device__ __forceinline__ int64_t grid_stride_start() { return int64_t(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t grid_stride_step() { return int64_t(gridDim.x) * blockDim.x; }

// Offsets of logical element i in each of the N operands of `layout` (dimensions merged on the
// host, so a contiguous operand has rank 1 and needs no division).
template <int N>
__device__ __forceinline__ void strided_offsets(const DeviceLayout<N>& layout, int64_t i, int64_t* offsets) {
  if (layout.rank == 1) {
    for (int k = 0; k < N; ++k) offsets[k] = i * layout.strides[k][0];
    return;
  }
  for (int k = 0; k < N; ++k) offsets[k] = 0;
  for (int d = layout.rank - 1; d >= 0; --d) {
    const int64_t size = layout.sizes[d];
    const int64_t index = i % size;
    i /= size;
    for (int k = 0; k < N; ++k) offsets[k] += index * layout.strides[k][d];
  }
}

// Whether every operand of `layout` is contiguous (merged on the host to rank 1, unit strides): the
// case a kernel may walk in 128-bit packs (engine/cuda/packed128.h).
template <int N>
inline bool unit_strided(const DeviceLayout<N>& layout) {
  if (layout.rank != 1) return false;
  for (int k = 0; k < N; ++k)
    if (layout.strides[k][0] != 1) return false;
  return true;
}

}  // namespace engine::cuda
