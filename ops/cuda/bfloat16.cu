// f32 <-> bf16 conversion kernels (declared in ops/cuda/bfloat16.h): one thread per element in a
// grid-stride loop. Plain CUDA C++: built by nvcc into `ops` and by g++ under the kernel emulator.
//
//   N = number of elements
#include "engine/cuda/check.h"
#include "ops/cuda/bfloat16.h"

namespace ops::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;

// Round to nearest even on the bit pattern: adding 0x7fff plus the lowest kept bit carries into
// the kept half exactly when the dropped half is above one half ulp, or equal to it with an odd
// kept half. A NaN is kept quiet (its payload could round to an infinity otherwise).
__device__ inline uint16_t round_to_bf16(float x) {
  const unsigned bits = __float_as_uint(x);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x0040u);
  const unsigned rounding = 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t((bits + rounding) >> 16);
}

__global__ void f32_to_bf16_kernel(uint16_t* out, const float* in, int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) out[i] = round_to_bf16(in[i]);
}

__global__ void bf16_to_f32_kernel(float* out, const uint16_t* in, int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    out[i] = __uint_as_float(unsigned(in[i]) << 16);
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
