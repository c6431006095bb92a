// Kernels of the CUDA backend's strided primitives (see backend_kernels.h). Plain CUDA C++: this
// file builds with nvcc into engine_cuda and with g++ under the kernel emulator into engine_cuda_emu.
//
// Every kernel walks its elements with a grid-stride loop, so grids stay small and one launch shape
// works for any size. Element i of a strided operand is found by peeling row-major indices off i,
// innermost dimension first (the host merges contiguous dimensions, so a contiguous tensor has rank 1).
#include <algorithm>

#include "engine/bfloat16.h"
#include "engine/cuda/backend_kernels.h"
#include "engine/cuda/check.h"
#include "engine/cuda/grid_stride.h"

namespace engine::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;
// Below this many summed elements per output, one thread per output is faster than one block.
constexpr int64_t kBlockReduceThreshold = 64;

int64_t blocks_for(int64_t n) { return std::max<int64_t>(1, std::min<int64_t>((n + kThreads - 1) / kThreads, kMaxBlocks)); }


template <typename T>
__global__ void fill_kernel(T* out, DeviceLayout<1> layout, T value) {
  for (int64_t i = grid_stride_start(); i < layout.numel; i += grid_stride_step()) {
    int64_t offset;
    strided_offsets(layout, i, &offset);
    out[offset] = value;
  }
}

template <typename Dst, typename Src>
__global__ void copy_kernel(Dst* dst, const Src* src, DeviceLayout<2> layout) {
  for (int64_t i = grid_stride_start(); i < layout.numel; i += grid_stride_step()) {
    int64_t offsets[2];
    strided_offsets(layout, i, offsets);
    dst[offsets[0]] = static_cast<Dst>(src[offsets[1]]);
  }
}

template <typename T>
__global__ void add_kernel(T* dst, const T* src, DeviceLayout<2> layout) {
  for (int64_t i = grid_stride_start(); i < layout.numel; i += grid_stride_step()) {
    int64_t offsets[2];
    strided_offsets(layout, i, offsets);
    dst[offsets[0]] += src[offsets[1]];
  }
}

// One thread per output element, summing its slice sequentially.
template <typename T>
__global__ void sum_to_serial_kernel(T* out, const T* in, DeviceLayout<1> kept, DeviceLayout<1> reduced) {
  for (int64_t o = grid_stride_start(); o < kept.numel; o += grid_stride_step()) {
    int64_t base, offset;
    strided_offsets(kept, o, &base);
    double acc = 0.0;
    for (int64_t r = 0; r < reduced.numel; ++r) {
      strided_offsets(reduced, r, &offset);
      acc += double(in[base + offset]);
    }
    out[o] = static_cast<T>(acc);
  }
}

// One block per output element: each thread sums a strided share of the slice, then a fixed tree in
// shared memory combines the shares, so the result does not depend on the grid size.
template <typename T>
__global__ void sum_to_block_kernel(T* out, const T* in, DeviceLayout<1> kept, DeviceLayout<1> reduced) {
  ENGINE_SHARED(double, partial, kThreads);
  const int tid = int(threadIdx.x);
  for (int64_t o = blockIdx.x; o < kept.numel; o += gridDim.x) {
    int64_t base, offset;
    strided_offsets(kept, o, &base);
    double acc = 0.0;
    for (int64_t r = tid; r < reduced.numel; r += kThreads) {
      strided_offsets(reduced, r, &offset);
      acc += double(in[base + offset]);
    }
    partial[tid] = acc;
    __syncthreads();
    for (int stride = kThreads / 2; stride > 0; stride /= 2) {
      if (tid < stride) partial[tid] += partial[tid + stride];
      __syncthreads();
    }
    if (tid == 0) out[o] = static_cast<T>(partial[0]);
    __syncthreads();  // partial is reused by the next output
  }
}

template <typename T>
__global__ void fill_random_kernel(T* out, int64_t n, RandomSpec spec, uint64_t seed, uint64_t offset) {
  for (int64_t i = grid_stride_start(); i < n; i += grid_stride_step())
    out[i] = static_cast<T>(random_element(spec, seed, offset, uint64_t(i)));
}

}  // namespace

template <typename T>
void fill_strided(T* out, const DeviceLayout<1>& layout, T value, cudaStream_t stream) {
  if (layout.numel == 0) return;
  ENGINE_LAUNCH(fill_kernel<T>, blocks_for(layout.numel), kThreads, 0, stream, out, layout, value);
}

template <typename Dst, typename Src>
void copy_strided(Dst* dst, const Src* src, const DeviceLayout<2>& layout, cudaStream_t stream) {
  if (layout.numel == 0) return;
  auto* copy_kernel_typed = copy_kernel<Dst, Src>;  // two template arguments: name it for the macro
  ENGINE_LAUNCH(copy_kernel_typed, blocks_for(layout.numel), kThreads, 0, stream, dst, src, layout);
}

template <typename T>
void add_strided(T* dst, const T* src, const DeviceLayout<2>& layout, cudaStream_t stream) {
  if (layout.numel == 0) return;
  ENGINE_LAUNCH(add_kernel<T>, blocks_for(layout.numel), kThreads, 0, stream, dst, src, layout);
}

template <typename T>
void sum_to(T* out, const T* in, const DeviceLayout<1>& kept, const DeviceLayout<1>& reduced, cudaStream_t stream) {
  if (kept.numel == 0) return;
  if (reduced.numel < kBlockReduceThreshold)
    ENGINE_LAUNCH(sum_to_serial_kernel<T>, blocks_for(kept.numel), kThreads, 0, stream, out, in, kept, reduced);
  else
    ENGINE_LAUNCH(sum_to_block_kernel<T>, std::min<int64_t>(kept.numel, kMaxBlocks), kThreads, 0, stream, out, in, kept,
                  reduced);
}

template <typename T>
void fill_random(T* out, int64_t n, const RandomSpec& spec, uint64_t seed, uint64_t offset, cudaStream_t stream) {
  if (n == 0) return;
  ENGINE_LAUNCH(fill_random_kernel<T>, blocks_for(n), kThreads, 0, stream, out, n, spec, seed, offset);
}

#define ENGINE_INSTANTIATE_FOR_TYPE(T)                                                                          \
  template void fill_strided<T>(T*, const DeviceLayout<1>&, T, cudaStream_t);                                  \
  template void fill_random<T>(T*, int64_t, const RandomSpec&, uint64_t, uint64_t, cudaStream_t);               \
  template void copy_strided<T, float>(T*, const float*, const DeviceLayout<2>&, cudaStream_t);                \
  template void copy_strided<T, double>(T*, const double*, const DeviceLayout<2>&, cudaStream_t);              \
  template void copy_strided<T, int32_t>(T*, const int32_t*, const DeviceLayout<2>&, cudaStream_t);            \
  template void copy_strided<T, int64_t>(T*, const int64_t*, const DeviceLayout<2>&, cudaStream_t);            \
  template void copy_strided<T, bf16>(T*, const bf16*, const DeviceLayout<2>&, cudaStream_t);
ENGINE_INSTANTIATE_FOR_TYPE(float)
ENGINE_INSTANTIATE_FOR_TYPE(double)
ENGINE_INSTANTIATE_FOR_TYPE(int32_t)
ENGINE_INSTANTIATE_FOR_TYPE(int64_t)
ENGINE_INSTANTIATE_FOR_TYPE(bf16)
#undef ENGINE_INSTANTIATE_FOR_TYPE

#define ENGINE_INSTANTIATE_FOR_FLOAT(T)                                                                         \
  template void add_strided<T>(T*, const T*, const DeviceLayout<2>&, cudaStream_t);                            \
  template void sum_to<T>(T*, const T*, const DeviceLayout<1>&, const DeviceLayout<1>&, cudaStream_t);
ENGINE_INSTANTIATE_FOR_FLOAT(float)
ENGINE_INSTANTIATE_FOR_FLOAT(double)
ENGINE_INSTANTIATE_FOR_FLOAT(bf16)
#undef ENGINE_INSTANTIATE_FOR_FLOAT

}  // namespace engine::cuda
