// Host vectors to and from fresh device allocations, for the tests that call the emulated libraries
// with raw device pointers (cuBLAS, cuBLASLt).
#pragma once

#include <cstddef>
#include <vector>

#include "engine/cuda/check.h"
#include "engine/cuda/cuda_api.h"

// A cudaMalloc'd copy of `host`; the caller frees it with cudaFree.
template <typename T>
T* to_device(const std::vector<T>& host) {
  T* ptr = nullptr;
  CUDA_CHECK(cudaMalloc(&ptr, host.size() * sizeof(T)));
  CUDA_CHECK(cudaMemcpy(ptr, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  return ptr;
}

// The first n elements at device pointer `ptr`.
template <typename T>
std::vector<T> to_host(const T* ptr, size_t n) {
  std::vector<T> out(n);
  CUDA_CHECK(cudaMemcpy(out.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost));
  return out;
}
