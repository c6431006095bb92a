// Kernels behind the CUDA backend's strided primitives (engine/backend.h): fill, copy with dtype
// conversion and broadcasting, add_into, sum_to (the gradient of a broadcast) and fill_random. They
// take raw device pointers and a description of the strided layout; the same source (backend_kernels.cu)
// builds with nvcc for GPUs and with g++ under the kernel emulator.
#pragma once

#include <cstdint>

#include "engine/cuda/cuda_api.h"
#include "engine/philox.h"

namespace engine::cuda {

// Dimensions beyond this are refused by the backend (after merging contiguous dimensions).
constexpr int kMaxStridedDims = 8;

// N operands walked over one shape: element i (row-major over sizes) of operand k sits at
// offset sum_d index_d(i) * strides[k][d] from that operand's base pointer. Passed by value.
template <int N>
struct DeviceLayout {
  int rank = 0;
  int64_t numel = 0;
  int64_t sizes[kMaxStridedDims] = {};
  int64_t strides[N][kMaxStridedDims] = {};
};

// out[...] = value.
template <typename T>
void fill_strided(T* out, const DeviceLayout<1>& layout, T value, cudaStream_t stream);
// dst[...] = Dst(src[...]); operand 0 is dst, operand 1 src (stride 0 where broadcast).
template <typename Dst, typename Src>
void copy_strided(Dst* dst, const Src* src, const DeviceLayout<2>& layout, cudaStream_t stream);
// dst[...] += src[...]; operands as copy_strided.
template <typename T>
void add_strided(T* dst, const T* src, const DeviceLayout<2>& layout, cudaStream_t stream);
// out[o] = sum over r of in[kept offset(o) + reduced offset(r)], accumulated in double in a fixed
// order (as the CPU backend): `kept` walks the output elements, `reduced` the summed dimensions.
template <typename T>
void sum_to(T* out, const T* in, const DeviceLayout<1>& kept, const DeviceLayout<1>& reduced, cudaStream_t stream);
// out[i] = T(random_element(spec, seed, offset, i)) for i < n (contiguous out).
template <typename T>
void fill_random(T* out, int64_t n, const RandomSpec& spec, uint64_t seed, uint64_t offset, cudaStream_t stream);

}  // namespace engine::cuda
