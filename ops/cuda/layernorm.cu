// Layer normalisation kernels (see ops/cuda/layernorm.h). Plain CUDA C++: built by nvcc into `ops_cuda`
// and by g++ under the kernel emulator into `ops_cuda_emu`.
//
// Legend: N = rows, C = channels, P = elements per 128-bit pack (Packed128<T>::size). Row kernels
// give each row one warp: lanes stride over the row's packs (128-bit loads and stores, a scalar
// tail where a pack is short or off the 16-byte grid), and a fixed xor-shuffle tree combines their
// double partial sums (the same bits for any grid). Parameter gradients are column sums: threads
// own columns, grid.y owns chunks of rows.
#include "ops/cuda/layernorm.h"

#include <algorithm>

#include "engine/cuda/check.h"
#include "engine/cuda/packed128.h"

namespace ops::cuda {

namespace {

using engine::cuda::load_pack;
using engine::cuda::pack_count;
using engine::cuda::Packed128;
using engine::cuda::packs_for;
using engine::cuda::store_pack;

constexpr int kWarp = 32;
constexpr int kThreads = 256;
constexpr int kRowsPerBlock = kThreads / kWarp;
constexpr int64_t kMaxBlocks = 4096;
constexpr int64_t kMaxGridY = 65535;
// Rows summed by one thread in the first pass of the parameter gradients.
constexpr int64_t kChunkRows = 64;

__device__ __forceinline__ double warp_sum(double value) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}

// First row of this warp and the step between a warp's rows (a grid-stride loop over rows).
__device__ __forceinline__ int64_t first_row() { return int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp; }
__device__ __forceinline__ int64_t row_step() { return int64_t(gridDim.x) * kRowsPerBlock; }

// out: (N, C), mean, rstd: (N); with a branch, residual: (N, C) = x + branch is written first and
// normalised. The same formulas as ops/cpu/layernorm.cpp: statistics in double, two passes over
// the row (the fused add is the first: the sum is taken while it is written).
template <typename T>
__global__ void layernorm_forward_kernel(T* out, T* mean, T* rstd, T* residual, const T* x, const T* branch,
                                         const T* weight, const T* bias, int64_t N, int64_t C, double eps) {
  constexpr int P = Packed128<T>::size;
  const int lane = int(threadIdx.x % kWarp);
  const int64_t packs = packs_for<T>(C);
  for (int64_t row = first_row(); row < N; row += row_step()) {
    const T* x_row = x + row * C;
    double sum = 0.0;
    if (branch) {
      // Each lane later re-reads only the packs it wrote here, so no barrier is needed.
      T* residual_row = residual + row * C;
      const T* branch_row = branch + row * C;
      for (int64_t p = lane; p < packs; p += kWarp) {
        const int n = pack_count<T>(p, C);
        const Packed128<T> a = load_pack(x_row + p * P, n), b = load_pack(branch_row + p * P, n);
        Packed128<T> r;
        for (int k = 0; k < P; ++k) r[k] = a[k] + b[k];
        for (int k = 0; k < P; ++k)
          if (k < n) sum += double(r[k]);
        store_pack(residual_row + p * P, r, n);
      }
      x_row = residual_row;
    } else {
      for (int64_t p = lane; p < packs; p += kWarp) {
        const int n = pack_count<T>(p, C);
        const Packed128<T> v = load_pack(x_row + p * P, n);
        for (int k = 0; k < P; ++k)
          if (k < n) sum += double(v[k]);
      }
    }
    const double m = warp_sum(sum) / double(C);
    double sum_sq = 0.0;
    for (int64_t p = lane; p < packs; p += kWarp) {
      const int n = pack_count<T>(p, C);
      const Packed128<T> v = load_pack(x_row + p * P, n);
      for (int k = 0; k < P; ++k) {
        const double d = double(v[k]) - m;
        if (k < n) sum_sq += d * d;
      }
    }
    const double s = 1.0 / sqrt(warp_sum(sum_sq) / double(C) + eps);
    const T m_t = T(m), s_t = T(s);
    T* out_row = out + row * C;
    for (int64_t p = lane; p < packs; p += kWarp) {
      const int n = pack_count<T>(p, C);
      const Packed128<T> v = load_pack(x_row + p * P, n), w = load_pack(weight + p * P, n);
      const Packed128<T> b = bias ? load_pack(bias + p * P, n) : Packed128<T>{};
      Packed128<T> y;
      for (int k = 0; k < P; ++k) y[k] = (v[k] - m_t) * s_t * w[k] + b[k];
      store_pack(out_row + p * P, y, n);
    }
    if (lane == 0) {
      mean[row] = m_t;
      rstd[row] = s_t;
    }
  }
}

// grad_x: (N, C) = rstd · (dn − mean(dn) − x̂ · mean(dn · x̂)),  dn = dy · weight, plus grad_residual
// (the fused op's residual gradient) when given.
template <typename T>
__global__ void layernorm_grad_x_kernel(T* grad_x, const T* grad_residual, const T* grad_out, const T* x,
                                        const T* weight, const T* mean, const T* rstd, int64_t N, int64_t C) {
  constexpr int P = Packed128<T>::size;
  const int lane = int(threadIdx.x % kWarp);
  const int64_t packs = packs_for<T>(C);
  for (int64_t row = first_row(); row < N; row += row_step()) {
    const T* x_row = x + row * C;
    const T* dy_row = grad_out + row * C;
    const T m = mean[row], s = rstd[row];
    double dn_sum = 0.0, dn_xhat_sum = 0.0;
    for (int64_t p = lane; p < packs; p += kWarp) {
      const int n = pack_count<T>(p, C);
      const Packed128<T> dy = load_pack(dy_row + p * P, n), v = load_pack(x_row + p * P, n);
      const Packed128<T> w = load_pack(weight + p * P, n);
      for (int k = 0; k < P; ++k) {
        const double dn = double(dy[k]) * double(w[k]);
        if (k < n) {
          dn_sum += dn;
          dn_xhat_sum += dn * double((v[k] - m) * s);
        }
      }
    }
    const T dn_mean = T(warp_sum(dn_sum) / double(C)), dn_xhat_mean = T(warp_sum(dn_xhat_sum) / double(C));
    T* dx_row = grad_x + row * C;
    const T* dr_row = grad_residual ? grad_residual + row * C : nullptr;
    for (int64_t p = lane; p < packs; p += kWarp) {
      const int n = pack_count<T>(p, C);
      const Packed128<T> dy = load_pack(dy_row + p * P, n), v = load_pack(x_row + p * P, n);
      const Packed128<T> w = load_pack(weight + p * P, n);
      Packed128<T> dx;
      for (int k = 0; k < P; ++k) {
        const T xhat = (v[k] - m) * s;
        dx[k] = s * (dy[k] * w[k] - dn_mean - xhat * dn_xhat_mean);
      }
      if (dr_row) {
        const Packed128<T> dr = load_pack(dr_row + p * P, n);
        for (int k = 0; k < P; ++k) dx[k] = dr[k] + dx[k];
      }
      store_pack(dx_row + p * P, dx, n);
    }
  }
}

// weight_partials, bias_partials: (chunks, C) = Σ over the chunk's rows, in order, of dy · x̂ and dy.
template <typename T>
__global__ void layernorm_param_partials_kernel(double* weight_partials, double* bias_partials, const T* grad_out,
                                                const T* x, const T* mean, const T* rstd, int64_t N, int64_t C) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  for (int64_t chunk = blockIdx.y; chunk * kChunkRows < N; chunk += gridDim.y) {
    const int64_t end = (chunk + 1) * kChunkRows < N ? (chunk + 1) * kChunkRows : N;
    double weight_sum = 0.0, bias_sum = 0.0;
    for (int64_t row = chunk * kChunkRows; row < end; ++row) {
      const T dy = grad_out[row * C + c];
      weight_sum += double(dy) * double((x[row * C + c] - mean[row]) * rstd[row]);
      bias_sum += double(dy);
    }
    weight_partials[chunk * C + c] = weight_sum;
    bias_partials[chunk * C + c] = bias_sum;
  }
}

// grad_weight, grad_bias: (C) = Σ over chunks, in chunk order, of the partials (either may be null).
template <typename T>
__global__ void layernorm_param_finish_kernel(T* grad_weight, T* grad_bias, const double* weight_partials,
                                              const double* bias_partials, int64_t chunks, int64_t C) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double weight_sum = 0.0, bias_sum = 0.0;
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    weight_sum += weight_partials[chunk * C + c];
    bias_sum += bias_partials[chunk * C + c];
  }
  if (grad_weight) grad_weight[c] = T(weight_sum);
  if (grad_bias) grad_bias[c] = T(bias_sum);
}

int64_t row_blocks(int64_t N) { return std::min((N + kRowsPerBlock - 1) / kRowsPerBlock, kMaxBlocks); }
int64_t chunks_for(int64_t N) { return (N + kChunkRows - 1) / kChunkRows; }

}  // namespace

template <typename T>
void layernorm_forward(T* out, T* mean, T* rstd, T* residual, const T* x, const T* branch, const T* weight,
                       const T* bias, int64_t N, int64_t C, double eps, cudaStream_t stream) {
  if (N == 0) return;
  ENGINE_LAUNCH(layernorm_forward_kernel<T>, row_blocks(N), kThreads, 0, stream, out, mean, rstd, residual, x, branch,
                weight, bias, N, C, eps);
}

int64_t layernorm_backward_scratch_size(int64_t N, int64_t C) { return 2 * chunks_for(N) * C; }

template <typename T>
void layernorm_backward(T* grad_x, T* grad_weight, T* grad_bias, double* scratch, const T* grad_residual,
                        const T* grad_out, const T* x, const T* weight, const T* mean, const T* rstd, int64_t N,
                        int64_t C, cudaStream_t stream) {
  if (grad_x && N > 0)
    ENGINE_LAUNCH(layernorm_grad_x_kernel<T>, row_blocks(N), kThreads, 0, stream, grad_x, grad_residual, grad_out, x,
                  weight, mean, rstd, N, C);
  if ((!grad_weight && !grad_bias) || C == 0) return;
  const int64_t chunks = chunks_for(N);
  double* weight_partials = scratch;
  double* bias_partials = scratch + chunks * C;
  const unsigned column_blocks = unsigned((C + kThreads - 1) / kThreads);
  if (chunks > 0) {
    const dim3 grid(column_blocks, unsigned(std::min(chunks, kMaxGridY)));
    ENGINE_LAUNCH(layernorm_param_partials_kernel<T>, grid, kThreads, 0, stream, weight_partials, bias_partials,
                  grad_out, x, mean, rstd, N, C);
  }
  ENGINE_LAUNCH(layernorm_param_finish_kernel<T>, column_blocks, kThreads, 0, stream, grad_weight, grad_bias,
                weight_partials, bias_partials, chunks, C);
}

#define INSTANTIATE(T)                                                                                             \
  template void layernorm_forward<T>(T*, T*, T*, T*, const T*, const T*, const T*, const T*, int64_t, int64_t,    \
                                     double, cudaStream_t);                                                       \
  template void layernorm_backward<T>(T*, T*, T*, double*, const T*, const T*, const T*, const T*, const T*,      \
                                      const T*, int64_t, int64_t, cudaStream_t);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace ops::cuda
