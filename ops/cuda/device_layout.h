// Host-side helper for the CUDA op dispatch (ops/*.cpp): the kernels' view of N strided operands
// walked over one shape (engine::cuda::DeviceLayout), with dimensions that are contiguous for every
// operand merged first, so that a contiguous tensor reaches the kernel with rank 1.
#pragma once

#include <array>

#include "engine/cuda/backend_kernels.h"
#include "engine/error.h"
#include "engine/strided_loop.h"

namespace ops::cuda {

using engine::cuda::DeviceLayout;

// strides[k] walks operand k over `shape` (0 where it is broadcast). `op` names the caller in errors.
template <int N>
DeviceLayout<N> device_layout(const engine::Shape& shape, const std::array<engine::Shape, size_t(N)>& strides,
                              const char* op) {
  const engine::StridedLayout<size_t(N)> merged = engine::merge_strided_dims<size_t(N)>(shape, strides);
  ENGINE_CHECK(merged.shape.size() <= size_t(engine::cuda::kMaxStridedDims), op, ": operands of shape ",
               engine::shape_str(shape), " have ", merged.shape.size(),
               " dimensions that cannot be merged; the CUDA kernels handle up to ", engine::cuda::kMaxStridedDims,
               " (make the operands contiguous first)");
  DeviceLayout<N> layout;
  layout.rank = int(merged.shape.size());
  layout.numel = engine::shape_numel(shape);
  for (int d = 0; d < layout.rank; ++d) {
    layout.sizes[d] = merged.shape[size_t(d)];
    for (int k = 0; k < N; ++k) layout.strides[k][d] = merged.strides[size_t(k)][size_t(d)];
  }
  return layout;
}

}  // namespace ops::cuda
