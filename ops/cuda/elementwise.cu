// CUDA elementwise kernels (see ops/cuda/elementwise.h): three generic grid-stride maps over
// strided operands, instantiated with small functors that hold each op's scalar function.
//
// Element i of every operand is found by peeling row-major indices off i; the host merges
// contiguous dimensions, so contiguous operands arrive with rank 1. When all of them are contiguous
// and of one type, a map walks them in 128-bit packs instead (engine/cuda/packed128.h).
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "engine/cuda/check.h"
#include "engine/cuda/cuda_api.h"
#include "engine/cuda/grid_stride.h"
#include "engine/cuda/packed128.h"
#include "ops/cuda/elementwise.h"

namespace ops::cuda {

namespace {

using engine::cuda::grid_stride_start;
using engine::cuda::grid_stride_step;
using engine::cuda::load_pack;
using engine::cuda::pack_count;
using engine::cuda::Packed128;
using engine::cuda::packs_for;
using engine::cuda::store_pack;
using engine::cuda::strided_offsets;
using engine::cuda::unit_strided;

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 8192;

// GPT-2's gelu_new constants: sqrt(2/pi) and the cubic coefficient.
constexpr double kGeluScale = 0.7978845608028654;
constexpr double kGeluCubic = 0.044715;

int64_t blocks_for(int64_t n) {
  return std::max<int64_t>(1, std::min<int64_t>((n + kThreads - 1) / kThreads, kMaxBlocks));
}


template <typename T, typename U, typename F>
__global__ void map1_kernel(T* out, const U* x, DeviceLayout<2> layout, F f) {
  for (int64_t i = grid_stride_start(); i < layout.numel; i += grid_stride_step()) {
    int64_t o[2];
    strided_offsets(layout, i, o);
    out[o[0]] = f(x[o[1]]);
  }
}

template <typename T, typename U, typename V, typename F>
__global__ void map2_kernel(T* out, const U* x, const V* y, DeviceLayout<3> layout, F f) {
  for (int64_t i = grid_stride_start(); i < layout.numel; i += grid_stride_step()) {
    int64_t o[3];
    strided_offsets(layout, i, o);
    out[o[0]] = f(x[o[1]], y[o[2]]);
  }
}

template <typename T, typename U, typename V, typename W, typename F>
__global__ void map3_kernel(T* out, const U* x, const V* y, const W* z, DeviceLayout<4> layout, F f) {
  for (int64_t i = grid_stride_start(); i < layout.numel; i += grid_stride_step()) {
    int64_t o[4];
    strided_offsets(layout, i, o);
    out[o[0]] = f(x[o[1]], y[o[2]], z[o[3]]);
  }
}

// f applied lane by lane to packs of one type.
template <typename F, typename T, typename... Rest>
__device__ __forceinline__ Packed128<T> apply_packed(F f, const Packed128<T>& first, const Rest&... rest) {
  Packed128<T> result;
  for (int k = 0; k < Packed128<T>::size; ++k) result[k] = f(first[k], rest[k]...);
  return result;
}

// out[i] = f(inputs[i]...) for n contiguous elements of one type, a thread per 128-bit pack.
template <typename T, typename F, typename... Inputs>
__global__ void map_packed_kernel(T* out, int64_t n, F f, const Inputs*... inputs) {
  constexpr int P = Packed128<T>::size;
  const int64_t packs = packs_for<T>(n);
  for (int64_t p = grid_stride_start(); p < packs; p += grid_stride_step()) {
    const int count = pack_count<T>(p, n);
    store_pack(out + p * P, apply_packed(f, load_pack(inputs + p * P, count)...), count);
  }
}

// The packed map when every operand is contiguous and of the output's type; false otherwise.
template <typename T, int N, typename F, typename... Inputs>
bool try_map_packed(T* out, const DeviceLayout<N>& layout, F f, cudaStream_t stream, const Inputs*... inputs) {
  if constexpr ((std::is_same_v<T, Inputs> && ...)) {
    if (!unit_strided(layout)) return false;
    auto* kernel = map_packed_kernel<T, F, Inputs...>;
    ENGINE_LAUNCH(kernel, blocks_for(packs_for<T>(layout.numel)), kThreads, 0, stream, out, layout.numel, f,
                  inputs...);
    return true;
  }
  return false;
}

template <typename T, typename U, typename F>
void map1(T* out, const U* x, const DeviceLayout<2>& layout, F f, cudaStream_t stream) {
  if (layout.numel == 0 || try_map_packed(out, layout, f, stream, x)) return;
  auto* kernel = map1_kernel<T, U, F>;
  ENGINE_LAUNCH(kernel, blocks_for(layout.numel), kThreads, 0, stream, out, x, layout, f);
}

template <typename T, typename U, typename V, typename F>
void map2(T* out, const U* x, const V* y, const DeviceLayout<3>& layout, F f, cudaStream_t stream) {
  if (layout.numel == 0 || try_map_packed(out, layout, f, stream, x, y)) return;
  auto* kernel = map2_kernel<T, U, V, F>;
  ENGINE_LAUNCH(kernel, blocks_for(layout.numel), kThreads, 0, stream, out, x, y, layout, f);
}

template <typename T, typename U, typename V, typename W, typename F>
void map3(T* out, const U* x, const V* y, const W* z, const DeviceLayout<4>& layout, F f, cudaStream_t stream) {
  if (layout.numel == 0 || try_map_packed(out, layout, f, stream, x, y, z)) return;
  auto* kernel = map3_kernel<T, U, V, W, F>;
  ENGINE_LAUNCH(kernel, blocks_for(layout.numel), kThreads, 0, stream, out, x, y, z, layout, f);
}

// ---- The per-op scalar functions ----

template <typename T> struct Add { __device__ T operator()(T a, T b) const { return a + b; } };
template <typename T> struct Sub { __device__ T operator()(T a, T b) const { return a - b; } };
template <typename T> struct Mul { __device__ T operator()(T a, T b) const { return a * b; } };
template <typename T> struct Div { __device__ T operator()(T a, T b) const { return a / b; } };
template <typename T> struct DivBackwardDivisor {
  __device__ T operator()(T g, T a, T b) const { return -g * a / (b * b); }
};

template <typename T> struct AddScalar { T s; __device__ T operator()(T v) const { return v + s; } };
template <typename T> struct MulScalar { T s; __device__ T operator()(T v) const { return v * s; } };
template <typename T> struct Square { __device__ T operator()(T v) const { return v * v; } };
template <typename T> struct PowScalar { T p; __device__ T operator()(T v) const { return pow(v, p); } };
template <typename T> struct Neg { __device__ T operator()(T v) const { return -v; } };
template <typename T> struct Exp { __device__ T operator()(T v) const { return exp(v); } };
template <typename T> struct Log { __device__ T operator()(T v) const { return log(v); } };
template <typename T> struct Tanh { __device__ T operator()(T v) const { return tanh(v); } };
template <typename T> struct Sqrt { __device__ T operator()(T v) const { return sqrt(v); } };
template <typename T> struct Rsqrt { __device__ T operator()(T v) const { return T(1) / sqrt(v); } };
// GELU as x·σ(2z), the CPU's form (ops/cpu/gelu.h): 0.5·(1 + tanh z) = σ(2z), no cancellation for x < 0.
template <typename T> struct Gelu {
  __device__ T operator()(T v) const { return v / (T(1) + exp(T(-2 * kGeluScale) * (v + T(kGeluCubic) * v * v * v))); }
};
template <typename T> struct Relu { __device__ T operator()(T v) const { return v > T(0) ? v : T(0); } };

// Derivatives: (grad_out, saved) -> grad_x, saved = x or y = f(x) as in cpu::unary_backward.
template <typename T> struct SquareBackward { __device__ T operator()(T g, T x) const { return g * T(2) * x; } };
template <typename T> struct PowBackward {
  T p;
  __device__ T operator()(T g, T x) const { return g * p * pow(x, p - T(1)); }
};
template <typename T> struct LogBackward { __device__ T operator()(T g, T x) const { return g / x; } };
template <typename T> struct GeluBackward {  // d/dx x·σ(2z) = σ + 2·x·σ·(1 − σ)·z'
  __device__ T operator()(T g, T x) const {
    const T sigma = T(1) / (T(1) + exp(T(-2 * kGeluScale) * (x + T(kGeluCubic) * x * x * x)));
    const T slope = T(kGeluScale) * (T(1) + T(3 * kGeluCubic) * x * x);
    return g * (sigma + T(2) * x * sigma * (T(1) - sigma) * slope);
  }
};
template <typename T> struct ExpBackward { __device__ T operator()(T g, T y) const { return g * y; } };
template <typename T> struct TanhBackward { __device__ T operator()(T g, T y) const { return g * (T(1) - y * y); } };
template <typename T> struct SqrtBackward { __device__ T operator()(T g, T y) const { return g / (T(2) * y); } };
template <typename T> struct RsqrtBackward {
  __device__ T operator()(T g, T y) const { return g * T(-0.5) * y * y * y; }
};
template <typename T> struct ReluBackward { __device__ T operator()(T g, T y) const { return y > T(0) ? g : T(0); } };

template <typename T, typename C> struct Select {
  __device__ T operator()(C c, T a, T b) const { return c != C(0) ? a : b; }
};
template <typename T, typename C> struct SelectGradient {
  bool keep_true;
  __device__ T operator()(C c, T g) const { return (c != C(0)) == keep_true ? g : T(0); }
};

}  // namespace

template <typename T>
void binary_forward(BinaryOp op, T* out, const T* a, const T* b, const DeviceLayout<3>& layout, cudaStream_t stream) {
  switch (op) {
    case BinaryOp::add: return map2(out, a, b, layout, Add<T>{}, stream);
    case BinaryOp::sub: return map2(out, a, b, layout, Sub<T>{}, stream);
    case BinaryOp::mul: return map2(out, a, b, layout, Mul<T>{}, stream);
    case BinaryOp::div: return map2(out, a, b, layout, Div<T>{}, stream);
  }
}

template <typename T>
void div_backward_divisor(T* grad_b, const T* grad_out, const T* a, const T* b, const DeviceLayout<4>& layout,
                          cudaStream_t stream) {
  map3(grad_b, grad_out, a, b, layout, DivBackwardDivisor<T>{}, stream);
}

template <typename T>
void unary_forward(UnaryOp op, double scalar, T* out, const T* x, const DeviceLayout<2>& layout, cudaStream_t stream) {
  const T s = static_cast<T>(scalar);
  switch (op) {
    case UnaryOp::add_scalar: return map1(out, x, layout, AddScalar<T>{s}, stream);
    case UnaryOp::mul_scalar: return map1(out, x, layout, MulScalar<T>{s}, stream);
    case UnaryOp::pow_scalar:
      if (scalar == 2.0) return map1(out, x, layout, Square<T>{}, stream);
      return map1(out, x, layout, PowScalar<T>{s}, stream);
    case UnaryOp::neg: return map1(out, x, layout, Neg<T>{}, stream);
    case UnaryOp::exp: return map1(out, x, layout, Exp<T>{}, stream);
    case UnaryOp::log: return map1(out, x, layout, Log<T>{}, stream);
    case UnaryOp::tanh: return map1(out, x, layout, Tanh<T>{}, stream);
    case UnaryOp::sqrt: return map1(out, x, layout, Sqrt<T>{}, stream);
    case UnaryOp::rsqrt: return map1(out, x, layout, Rsqrt<T>{}, stream);
    case UnaryOp::gelu: return map1(out, x, layout, Gelu<T>{}, stream);
    case UnaryOp::relu: return map1(out, x, layout, Relu<T>{}, stream);
  }
}

template <typename T>
void unary_backward(UnaryOp op, double scalar, T* grad_x, const T* grad_out, const T* saved,
                    const DeviceLayout<3>& layout, cudaStream_t stream) {
  switch (op) {
    case UnaryOp::pow_scalar:
      if (scalar == 2.0) return map2(grad_x, grad_out, saved, layout, SquareBackward<T>{}, stream);
      return map2(grad_x, grad_out, saved, layout, PowBackward<T>{static_cast<T>(scalar)}, stream);
    case UnaryOp::log: return map2(grad_x, grad_out, saved, layout, LogBackward<T>{}, stream);
    case UnaryOp::gelu: return map2(grad_x, grad_out, saved, layout, GeluBackward<T>{}, stream);
    case UnaryOp::exp: return map2(grad_x, grad_out, saved, layout, ExpBackward<T>{}, stream);
    case UnaryOp::tanh: return map2(grad_x, grad_out, saved, layout, TanhBackward<T>{}, stream);
    case UnaryOp::sqrt: return map2(grad_x, grad_out, saved, layout, SqrtBackward<T>{}, stream);
    case UnaryOp::rsqrt: return map2(grad_x, grad_out, saved, layout, RsqrtBackward<T>{}, stream);
    case UnaryOp::relu: return map2(grad_x, grad_out, saved, layout, ReluBackward<T>{}, stream);
    case UnaryOp::add_scalar: case UnaryOp::mul_scalar: case UnaryOp::neg:
      throw engine::Error("unary_backward: constant-derivative ops have no backward kernel");
  }
}

template <typename T, typename C>
void where_forward(T* out, const C* condition, const T* a, const T* b, const DeviceLayout<4>& layout,
                   cudaStream_t stream) {
  map3(out, condition, a, b, layout, Select<T, C>{}, stream);
}

template <typename T, typename C>
void where_backward(bool keep_true, T* grad, const C* condition, const T* grad_out, const DeviceLayout<3>& layout,
                    cudaStream_t stream) {
  map2(grad, condition, grad_out, layout, SelectGradient<T, C>{keep_true}, stream);
}

#define ENGINE_INSTANTIATE_FLOAT(T)                                                                             \
  template void binary_forward<T>(BinaryOp, T*, const T*, const T*, const DeviceLayout<3>&, cudaStream_t);     \
  template void div_backward_divisor<T>(T*, const T*, const T*, const T*, const DeviceLayout<4>&, cudaStream_t); \
  template void unary_forward<T>(UnaryOp, double, T*, const T*, const DeviceLayout<2>&, cudaStream_t);         \
  template void unary_backward<T>(UnaryOp, double, T*, const T*, const T*, const DeviceLayout<3>&, cudaStream_t);
#define ENGINE_INSTANTIATE_CONDITION(T, C)                                                                      \
  template void where_forward<T, C>(T*, const C*, const T*, const T*, const DeviceLayout<4>&, cudaStream_t);   \
  template void where_backward<T, C>(bool, T*, const C*, const T*, const DeviceLayout<3>&, cudaStream_t);
#define ENGINE_INSTANTIATE_ALL_CONDITIONS(T) \
  ENGINE_INSTANTIATE_CONDITION(T, float)     \
  ENGINE_INSTANTIATE_CONDITION(T, double)    \
  ENGINE_INSTANTIATE_CONDITION(T, int32_t)   \
  ENGINE_INSTANTIATE_CONDITION(T, int64_t)
ENGINE_INSTANTIATE_FLOAT(float)
ENGINE_INSTANTIATE_FLOAT(double)
ENGINE_INSTANTIATE_ALL_CONDITIONS(float)
ENGINE_INSTANTIATE_ALL_CONDITIONS(double)
#undef ENGINE_INSTANTIATE_FLOAT
#undef ENGINE_INSTANTIATE_CONDITION
#undef ENGINE_INSTANTIATE_ALL_CONDITIONS

}  // namespace ops::cuda
