// CUDA rotary kernels (see ops/cuda/rotary.h). The rotation and its input gradient take one thread
// per element of (B, H, T, D). The angle gradient takes one thread per angle (row, m): it sums
// over b (and h when the angles are shared by the heads) in increasing order, in double, so the
// result is reproducible without atomics.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "engine/cuda/check.h"
#include "engine/cuda/grid_stride.h"
#include "ops/cuda/rotary.h"

namespace ops::cuda {

namespace {

using engine::cuda::grid_stride_start;
using engine::cuda::grid_stride_step;

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 8192;

int64_t blocks_for(int64_t n) {
  return std::max<int64_t>(1, std::min<int64_t>((n + kThreads - 1) / kThreads, kMaxBlocks));
}


// Element k of (B, H, T, D) rotated by `sign`·θ (sign = +1 forward, −1 for the input gradient):
// writes dst[k] from the pair of src that contains it.
template <typename T>
__global__ void rotate_kernel(T* dst, const T* src, const T* angles, int64_t B, int64_t H, int64_t Tn, int64_t D,
                              int64_t P, bool per_head, T sign) {
  const int64_t n = B * H * Tn * D;
  for (int64_t k = grid_stride_start(); k < n; k += grid_stride_step()) {
    const int64_t d = k % D, row = k / D;  // row = (b·H + h)·T + t
    if (d >= 2 * P) {
      dst[k] = src[k];
      continue;
    }
    const int64_t t = row % Tn, h = (row / Tn) % H, m = d / 2;
    const T theta = angles[((per_head ? h * Tn : 0) + t) * P + m];
    const T c = cos(theta), s = sign * sin(theta);
    const T a = src[k - d + 2 * m], b = src[k - d + 2 * m + 1];
    dst[k] = d % 2 == 0 ? a * c - b * s : a * s + b * c;
  }
}

// grad_angles[row, m] = Σ_{b, h} ga·(−a·s − b·c) + gb·(a·c − b·s) over the elements using that angle.
template <typename T>
__global__ void angle_gradient_kernel(T* grad_angles, const T* grad_out, const T* x, const T* angles, int64_t B,
                                      int64_t H, int64_t Tn, int64_t D, int64_t P, bool per_head) {
  const int64_t angle_rows = per_head ? H * Tn : Tn;
  for (int64_t k = grid_stride_start(); k < angle_rows * P; k += grid_stride_step()) {
    const int64_t row = k / P, m = k % P, t = row % Tn;
    const int64_t h_begin = per_head ? row / Tn : 0, h_end = per_head ? h_begin + 1 : H;
    const T theta = angles[k];
    const T c = cos(theta), s = sin(theta);
    double acc = 0.0;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = h_begin; h < h_end; ++h) {
        const int64_t offset = ((b * H + h) * Tn + t) * D + 2 * m;
        const T ga = grad_out[offset], gb = grad_out[offset + 1], xa = x[offset], xb = x[offset + 1];
        acc += double(ga * (-xa * s - xb * c) + gb * (xa * c - xb * s));
      }
    grad_angles[k] = static_cast<T>(acc);
  }
}

}  // namespace

template <typename T>
void rotary_forward(const T* x, const T* angles, T* out, int64_t B, int64_t H, int64_t Tn, int64_t D, int64_t P,
                    bool per_head, cudaStream_t stream) {
  const int64_t n = B * H * Tn * D;
  if (n == 0) return;
  ENGINE_LAUNCH(rotate_kernel<T>, blocks_for(n), kThreads, 0, stream, out, x, angles, B, H, Tn, D, P, per_head, T(1));
}

template <typename T>
void rotary_backward(const T* grad_out, const T* x, const T* angles, T* grad_x, T* grad_angles, int64_t B, int64_t H,
                     int64_t Tn, int64_t D, int64_t P, bool per_head, cudaStream_t stream) {
  const int64_t n = B * H * Tn * D;
  if (n > 0)
    ENGINE_LAUNCH(rotate_kernel<T>, blocks_for(n), kThreads, 0, stream, grad_x, grad_out, angles, B, H, Tn, D, P,
                  per_head, T(-1));
  const int64_t angle_count = (per_head ? H * Tn : Tn) * P;
  if (grad_angles && angle_count > 0)
    ENGINE_LAUNCH(angle_gradient_kernel<T>, blocks_for(angle_count), kThreads, 0, stream, grad_angles, grad_out, x,
                  angles, B, H, Tn, D, P, per_head);
}

#define ENGINE_INSTANTIATE(T)                                                                                      \
  template void rotary_forward<T>(const T*, const T*, T*, int64_t, int64_t, int64_t, int64_t, int64_t, bool,       \
                                  cudaStream_t);                                                                   \
  template void rotary_backward<T>(const T*, const T*, const T*, T*, T*, int64_t, int64_t, int64_t, int64_t, int64_t, \
                                   bool, cudaStream_t);
ENGINE_INSTANTIATE(float)
ENGINE_INSTANTIATE(double)
#undef ENGINE_INSTANTIATE

}  // namespace ops::cuda
