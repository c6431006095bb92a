// Packed128<T>: 16 bytes of T moved by one 128-bit load or store (llm.c's Packed128), for the
// memory-bound kernels (layer norm, elementwise maps, GELU, AdamW, bf16 conversions): a warp then
// reads 512 contiguous bytes per instruction instead of 128, fewer instructions for the same bytes.
// Plain CUDA C++, no intrinsics and no inline PTX, so it also runs under the kernel emulator.
//
// A kernel walks its data in packs of Packed128<T>::size elements: pack p covers elements
// [p·size, p·size + count), count = size except for the last pack of a length that is not a multiple
// of size. load_pack and store_pack take one 128-bit access when the pack is whole and its address
// 16-byte aligned, and fall back to one access per element otherwise (the scalar tail: short last
// packs, views that start off the 16-byte grid, rows whose length is not a multiple of size).
// Loops over a pack run to the constant size and test k < count inside, so that they unroll and
// the pack stays in registers (a runtime trip count would index it dynamically, in local memory).
#pragma once

#include <cstdint>

#include "engine/cuda/cuda_api.h"

namespace engine::cuda {

template <typename T>
struct alignas(16) Packed128 {
  static_assert(16 % sizeof(T) == 0, "Packed128: the element size must divide 16 bytes");
  static constexpr int size = int(16 / sizeof(T));
  T values[size];

  __device__ __forceinline__ T& operator[](int k) { return values[k]; }
  __device__ __forceinline__ const T& operator[](int k) const { return values[k]; }
};
static_assert(sizeof(Packed128<float>) == 16 && sizeof(Packed128<double>) == 16 && sizeof(Packed128<uint16_t>) == 16);

// Elements of pack `pack` of an array of n: Packed128<T>::size, or fewer for the last one.
template <typename T>
__device__ __forceinline__ int pack_count(int64_t pack, int64_t n) {
  const int64_t left = n - pack * Packed128<T>::size;
  return left < Packed128<T>::size ? int(left) : Packed128<T>::size;
}

// Packs covering n elements (the last possibly short).
template <typename T>
__host__ __device__ __forceinline__ int64_t packs_for(int64_t n) {
  return (n + Packed128<T>::size - 1) / Packed128<T>::size;
}

template <typename T>
__device__ __forceinline__ bool is_aligned128(const T* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

// The `count` elements from p (count <= size); the rest of the pack is zero.
template <typename T>
__device__ __forceinline__ Packed128<T> load_pack(const T* p, int count) {
  if (count == Packed128<T>::size && is_aligned128(p)) return *reinterpret_cast<const Packed128<T>*>(p);
  Packed128<T> packed;
  for (int k = 0; k < Packed128<T>::size; ++k) packed[k] = k < count ? p[k] : T(0);
  return packed;
}

// Writes the first `count` elements of `packed` to p (count <= size).
template <typename T>
__device__ __forceinline__ void store_pack(T* p, const Packed128<T>& packed, int count) {
  if (count == Packed128<T>::size && is_aligned128(p)) {
    *reinterpret_cast<Packed128<T>*>(p) = packed;
    return;
  }
  for (int k = 0; k < Packed128<T>::size; ++k)
    if (k < count) p[k] = packed[k];
}

}  // namespace engine::cuda
