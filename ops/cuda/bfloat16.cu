// f32 <-> bf16 conversion kernels (declared in ops/cuda/bfloat16.h): one thread per 8 elements in a
// grid-stride loop, one 128-bit access of bf16 and two of f32 (engine/cuda/packed128.h), rounding by
// the engine's one rule (engine/bfloat16.h). Plain CUDA C++: built by nvcc into `ops_cuda` and by
// g++ under the kernel emulator.
//
//   N = number of elements
#include "engine/bfloat16.h"
#include "engine/cuda/check.h"
#include "engine/cuda/packed128.h"
#include "ops/cuda/bfloat16.h"

namespace ops::cuda {

namespace {

using engine::cuda::load_pack;
using engine::cuda::pack_count;
using engine::cuda::Packed128;
using engine::cuda::packs_for;
using engine::cuda::store_pack;

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;
// Elements per thread: one pack of bf16, two of f32.
constexpr int kPack = Packed128<uint16_t>::size;
constexpr int kHalf = Packed128<float>::size;
static_assert(kPack == 2 * kHalf);

// Of the `count` elements of a bf16 pack, those in its first f32 half.
__device__ __forceinline__ int first_half(int count) { return count < kHalf ? count : kHalf; }

__global__ void f32_to_bf16_kernel(uint16_t* out, const float* in, int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; p < packs_for<uint16_t>(n); p += stride) {
    const int count = pack_count<uint16_t>(p, n), low = first_half(count);
    const Packed128<float> a = load_pack(in + p * kPack, low), b = load_pack(in + p * kPack + kHalf, count - low);
    Packed128<uint16_t> bits;
    for (int k = 0; k < kHalf; ++k) {
      bits[k] = engine::bf16_bits_from_f32(a[k]);
      bits[kHalf + k] = engine::bf16_bits_from_f32(b[k]);
    }
    store_pack(out + p * kPack, bits, count);
  }
}

__global__ void bf16_to_f32_kernel(float* out, const uint16_t* in, int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; p < packs_for<uint16_t>(n); p += stride) {
    const int count = pack_count<uint16_t>(p, n), low = first_half(count);
    const Packed128<uint16_t> bits = load_pack(in + p * kPack, count);
    Packed128<float> a, b;
    for (int k = 0; k < kHalf; ++k) {
      a[k] = engine::f32_from_bf16_bits(bits[k]);
      b[k] = engine::f32_from_bf16_bits(bits[kHalf + k]);
    }
    store_pack(out + p * kPack, a, low);
    store_pack(out + p * kPack + kHalf, b, count - low);
  }
}

unsigned blocks_for(int64_t n) {
  const int64_t blocks = (packs_for<uint16_t>(n) + kThreads - 1) / kThreads;
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
