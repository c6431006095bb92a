// f32 <-> bf16 conversion kernels (declared in ops/cuda/bfloat16.h): one thread per element in a
// grid-stride loop, rounding by the engine's one rule (engine/bfloat16.h). Plain CUDA C++: built by
// nvcc into `ops_cuda` and by g++ under the kernel emulator.
//
//   N = number of elements
#include "engine/bfloat16.h"
#include "engine/cuda/check.h"
#include "ops/cuda/bfloat16.h"

namespace ops::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;

__global__ void f32_to_bf16_kernel(uint16_t* out, const float* in, int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    out[i] = engine::bf16_bits_from_f32(in[i]);
}

__global__ void bf16_to_f32_kernel(float* out, const uint16_t* in, int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    out[i] = engine::f32_from_bf16_bits(in[i]);
}

unsigned blocks_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return unsigned(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

}  // namespace

void f32_to_bf16(uint16_t* out, const float* in, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  ENGINE_LAUNCH(f32_to_bf16_kernel, blocks_for(n), kThreads, 0, stream, out, in, n);
}

void bf16_to_f32(float* out, const uint16_t* in, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  ENGINE_LAUNCH(bf16_to_f32_kernel, blocks_for(n), kThreads, 0, stream, out, in, n);
}

}  // namespace ops::cuda
