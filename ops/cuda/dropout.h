// CUDA kernel for inverted dropout with a Philox mask (engine/philox.h).
//
// Legend: n = number of elements. Element i is kept when its Philox uniform at (seed, offset, i)
// is below 1 − p, exactly as ops/cpu/dropout.h decides: the CPU and CUDA masks are bitwise equal.
// The backward applies the same function to the output gradient.
#pragma once

#include <cstdint>

#include "engine/cuda/cuda_api.h"

namespace ops::cuda {

// out: (n) = in: (n) · keep_i / (1 − p) (device pointers); out may alias in.
template <typename T>
void dropout_apply(T* out, const T* in, int64_t n, double p, uint64_t seed, uint64_t offset, cudaStream_t stream);

}  // namespace ops::cuda
