// linear on CUDA (see ops/cuda/matmul.h): the cuBLASLt GEMMs with fused epilogues, and the kernels for
// linear's epilogue and bias gradient where they are not fused. Plain CUDA C++: built by nvcc into
// `ops_cuda` and by g++ under the kernel emulator into `ops_cuda_emu`.
//
// Legend: N = rows, O = output features, P = elements per 128-bit pack. Row-wise kernels put rows
// on grid.y (looping when N exceeds the grid limit) and columns on threads, so no thread divides an
// element index; the epilogue and GELU kernels move packs of P (engine/cuda/packed128.h).
#include "ops/cuda/matmul.h"

#include <algorithm>

#include "engine/cuda/check.h"
#include "engine/cuda/packed128.h"
#include "ops/cuda/gemm.h"

namespace ops::cuda {

namespace {

using engine::cuda::load_pack;
using engine::cuda::pack_count;
using engine::cuda::Packed128;
using engine::cuda::packs_for;
using engine::cuda::store_pack;

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;
constexpr int64_t kMaxGridY = 65535;
// Rows summed by one thread in the first pass of column_sums.
constexpr int64_t kColumnSumChunkRows = 64;

__device__ __forceinline__ float exp_of(float x) { return expf(x); }
__device__ __forceinline__ double exp_of(double x) { return exp(x); }

// The same formulas as the CPU kernels (ops/cpu/matmul.cpp): GPT-2's 0.5·x·(1 + tanh z),
// z = √(2/π)·(x + 0.044715·x³), as x·σ(2z), with no cancellation in 1 + tanh z for negative x.
template <typename T>
__device__ __forceinline__ T gelu_tanh(T x) {
  const T z = T(0.7978845608028654) * (x + T(0.044715) * x * x * x);
  return x / (T(1) + exp_of(T(-2) * z));
}

// d/dx x·σ(2z) = σ + 2·x·σ·(1 − σ)·z', z' = √(2/π)·(1 + 3·0.044715·x²).
template <typename T>
__device__ __forceinline__ T gelu_tanh_derivative(T x) {
  const T s = T(0.7978845608028654);
  const T sigma = T(1) / (T(1) + exp_of(T(-2) * s * (x + T(0.044715) * x * x * x)));
  return sigma + T(2) * x * sigma * (T(1) - sigma) * s * (T(1) + T(3 * 0.044715) * x * x);
}

// y, pre: (N, O); bias: (O) or null. Threads over packs of columns, grid.y over rows.
template <typename T>
__global__ void linear_epilogue_kernel(T* y, T* pre, const T* bias, int64_t N, int64_t O, bool gelu) {
  constexpr int P = Packed128<T>::size;
  const int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (p >= packs_for<T>(O)) return;
  const int count = pack_count<T>(p, O);
  const Packed128<T> b = bias ? load_pack(bias + p * P, count) : Packed128<T>{};
  for (int64_t row = blockIdx.y; row < N; row += gridDim.y) {
    const int64_t i = row * O + p * P;
    Packed128<T> value = load_pack(y + i, count);
    for (int k = 0; k < P; ++k) value[k] = value[k] + b[k];
    if (gelu) {
      store_pack(pre + i, value, count);
      for (int k = 0; k < P; ++k) value[k] = gelu_tanh(value[k]);
    }
    store_pack(y + i, value, count);
  }
}

// grad_pre: (n) = grad_y · gelu'(pre), a thread per pack of P.
template <typename T>
__global__ void gelu_backward_kernel(T* grad_pre, const T* grad_y, const T* pre, int64_t n) {
  constexpr int P = Packed128<T>::size;
  for (int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; p < packs_for<T>(n);
       p += int64_t(gridDim.x) * blockDim.x) {
    const int count = pack_count<T>(p, n);
    const Packed128<T> g = load_pack(grad_y + p * P, count), x = load_pack(pre + p * P, count);
    Packed128<T> result;
    for (int k = 0; k < P; ++k) result[k] = g[k] * gelu_tanh_derivative(x[k]);
    store_pack(grad_pre + p * P, result, count);
  }
}

// partials: (chunks, O); chunk blockIdx.y of rows, column per thread, rows added in order.
template <typename T>
__global__ void column_partial_sums_kernel(double* partials, const T* g, int64_t N, int64_t O) {
  const int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (o >= O) return;
  for (int64_t chunk = blockIdx.y; chunk * kColumnSumChunkRows < N; chunk += gridDim.y) {
    const int64_t end = (chunk + 1) * kColumnSumChunkRows < N ? (chunk + 1) * kColumnSumChunkRows : N;
    double sum = 0.0;
    for (int64_t row = chunk * kColumnSumChunkRows; row < end; ++row) sum += double(g[row * O + o]);
    partials[chunk * O + o] = sum;
  }
}

// out: (O) = Σ_chunk partials[chunk, o], chunks in order.
template <typename T>
__global__ void column_sums_finish_kernel(T* out, const double* partials, int64_t chunks, int64_t O) {
  const int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (o >= O) return;
  double sum = 0.0;
  for (int64_t chunk = 0; chunk < chunks; ++chunk) sum += partials[chunk * O + o];
  out[o] = T(sum);
}

unsigned column_blocks(int64_t O) { return unsigned((O + kThreads - 1) / kThreads); }

}  // namespace

template <typename T>
void linear_epilogue(T* y, T* pre, const T* bias, int64_t N, int64_t O, bool gelu, cudaStream_t stream) {
  if ((!bias && !gelu) || N == 0 || O == 0) return;
  const dim3 grid(column_blocks(packs_for<T>(O)), unsigned(std::min(N, kMaxGridY)));
  ENGINE_LAUNCH(linear_epilogue_kernel<T>, grid, kThreads, 0, stream, y, pre, bias, N, O, gelu);
}

template <typename T>
void gelu_backward(T* grad_pre, const T* grad_y, const T* pre, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  const int64_t blocks = std::min((packs_for<T>(n) + kThreads - 1) / kThreads, kMaxBlocks);
  ENGINE_LAUNCH(gelu_backward_kernel<T>, blocks, kThreads, 0, stream, grad_pre, grad_y, pre, n);
}

int64_t column_sum_chunks(int64_t N) { return (N + kColumnSumChunkRows - 1) / kColumnSumChunkRows; }

template <typename T>
void column_sums(T* out, double* partials, const T* g, int64_t N, int64_t O, cudaStream_t stream) {
  if (O == 0) return;
  const int64_t chunks = column_sum_chunks(N);
  if (chunks > 0) {
    const dim3 grid(column_blocks(O), unsigned(std::min(chunks, kMaxGridY)));
    ENGINE_LAUNCH(column_partial_sums_kernel<T>, grid, kThreads, 0, stream, partials, g, N, O);
  }
  ENGINE_LAUNCH(column_sums_finish_kernel<T>, column_blocks(O), kThreads, 0, stream, out, partials, chunks, O);
}

template <typename T>
void linear_forward(const T* x, int64_t ldx, bool x_transposed, const T* weight, int64_t ldw, bool weight_transposed,
                    const T* bias, T* y, T* pre, int64_t R, int64_t I, int64_t O, bool gelu, bool bf16_operands,
                    cudaStream_t stream) {
  if (R == 0 || O == 0) return;
  // y = x · weightᵀ: op(A) = x, op(B) = weightᵀ, stored (O, I) unless weight_transposed.
  if (bias != nullptr) {
    GemmFusion<T> fusion;
    fusion.epilogue = gelu ? GemmEpilogue::bias_gelu : GemmEpilogue::bias;
    fusion.bias = bias;
    fusion.pre = pre;
    if (gemm_fused<T>(fusion, x_transposed, !weight_transposed, R, O, I, T(1), x, ldx, weight, ldw, T(0), y, O, stream,
                      bf16_operands))
      return;
  }
  gemm<T>(x_transposed, !weight_transposed, R, O, I, T(1), x, ldx, weight, ldw, T(0), y, O, stream, bf16_operands);
  linear_epilogue<T>(y, pre, bias, R, O, gelu, stream);
}

template <typename T>
bool linear_weight_gradient(const T* grad_pre, const T* x, int64_t ldx, bool x_transposed, T* grad_weight,
                            bool accumulate, T* grad_bias, int64_t R, int64_t I, int64_t O, bool bf16_operands, cudaStream_t stream) {
  // grad_weight = grad_preᵀ · x: op(A) = grad_preᵀ (A stored (R, O), transposed), whose row sums
  // are the bias gradient.
  if (O == 0 || I == 0) return false;
  const T beta = accumulate ? T(1) : T(0);
  if (grad_bias != nullptr && !bf16_operands) {
    GemmFusion<T> fusion;
    fusion.epilogue = GemmEpilogue::bias_gradient;
    fusion.bias_gradient = grad_bias;
    if (gemm_fused<T>(fusion, true, x_transposed, O, I, R, T(1), grad_pre, O, x, ldx, beta, grad_weight, I, stream,
                      false))
      return true;
  }
  gemm<T>(true, x_transposed, O, I, R, T(1), grad_pre, O, x, ldx, beta, grad_weight, I, stream, bf16_operands);
  return false;
}

#define INSTANTIATE(T)                                                                              \
  template void linear_forward<T>(const T*, int64_t, bool, const T*, int64_t, bool, const T*, T*, T*, int64_t, \
                                  int64_t, int64_t, bool, bool, cudaStream_t);                      \
  template bool linear_weight_gradient<T>(const T*, const T*, int64_t, bool, T*, bool, T*, int64_t, int64_t, int64_t, \
                                          bool, cudaStream_t);                                      \
  template void linear_epilogue<T>(T*, T*, const T*, int64_t, int64_t, bool, cudaStream_t);        \
  template void gelu_backward<T>(T*, const T*, const T*, int64_t, cudaStream_t);                    \
  template void column_sums<T>(T*, double*, const T*, int64_t, int64_t, cudaStream_t);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace ops::cuda
