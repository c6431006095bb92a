// Dropout kernel (see ops/cuda/dropout.h). Plain CUDA C++: built by nvcc into `ops_cuda` and by g++ under
// the kernel emulator into `ops_cuda_emu`. One thread per Philox block: one 4×32-bit draw decides 4
// consecutive elements, as on the CPU.
#include <algorithm>

#include "engine/cuda/check.h"
#include "engine/philox.h"
#include "ops/cuda/dropout.h"

namespace ops::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;

template <typename T>
__global__ void dropout_kernel(T* out, const T* in, int64_t n, double keep_probability, T scale, uint64_t seed,
                               uint64_t offset) {
  const int64_t philox_blocks = (n + 3) / 4;
  for (int64_t b = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; b < philox_blocks;
       b += int64_t(gridDim.x) * blockDim.x) {
    const engine::PhiloxBlock bits = engine::philox4x32_10(offset + uint64_t(b), seed);
    for (int64_t lane = 0, i = b * 4; lane < 4 && i < n; ++lane, ++i)
      out[i] = engine::philox_to_unit(bits.v[lane]) < keep_probability ? in[i] * scale : T(0);
  }
}

}  // namespace

template <typename T>
void dropout_apply(T* out, const T* in, int64_t n, double p, uint64_t seed, uint64_t offset, cudaStream_t stream) {
  if (n == 0) return;
  const double keep_probability = 1.0 - p;
  const T scale = p < 1.0 ? T(1.0 / keep_probability) : T(0);
  const int64_t philox_blocks = (n + 3) / 4;
  const int64_t blocks = std::min<int64_t>((philox_blocks + kThreads - 1) / kThreads, kMaxBlocks);
  ENGINE_LAUNCH(dropout_kernel<T>, blocks, kThreads, 0, stream, out, in, n, keep_probability, scale, seed, offset);
}

template void dropout_apply<float>(float*, const float*, int64_t, double, uint64_t, uint64_t, cudaStream_t);
template void dropout_apply<double>(double*, const double*, int64_t, double, uint64_t, uint64_t, cudaStream_t);

}  // namespace ops::cuda
