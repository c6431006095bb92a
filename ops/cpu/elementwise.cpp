// CPU elementwise kernels: a few generic maps (dense fast path, strided fallback through
// engine::strided_loop) instantiated with the per-op scalar functions.
#include "ops/cpu/elementwise.h"

#include <cmath>
#include <cstdint>

#include "engine/error.h"
#include "engine/strided_loop.h"
#include "ops/cpu/gelu.h"
#include "ops/cpu/vec_math.h"

namespace ops::cpu {

namespace {

using engine::contiguous_strides;
using engine::shape_numel;
using engine::strided_loop;

// Below this many elements a parallel region costs more than it saves.
constexpr int64_t kParallelThreshold = int64_t(1) << 15;

// True when `strides` walk `shape` row-major without gaps, i.e. the operand is contiguous and not
// broadcast. Size-1 dimensions never matter.
bool dense(const Shape& shape, const Shape& strides) {
  int64_t expected = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    if (shape[d] == 1) continue;
    if (strides[d] != expected) return false;
    expected *= shape[d];
  }
  return true;
}

// out[i] = f(x[i]) over contiguous arrays.
template <typename T, typename U, typename F>
void map1_dense(const F& f, T* out, const U* x, int64_t n) {
#pragma omp parallel for simd if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) out[i] = f(x[i]);
}

template <typename T, typename U, typename V, typename F>
void map2_dense(const F& f, T* out, const U* x, const V* y, int64_t n) {
#pragma omp parallel for simd if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) out[i] = f(x[i], y[i]);
}

template <typename T, typename U, typename V, typename W, typename F>
void map3_dense(const F& f, T* out, const U* x, const V* y, const W* z, int64_t n) {
#pragma omp parallel for simd if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) out[i] = f(x[i], y[i], z[i]);
}

// out = f(x) with out contiguous and x strided.
template <typename T, typename U, typename F>
void map1(const F& f, T* out, const U* x, const Shape& shape, const Shape& x_strides) {
  if (dense(shape, x_strides)) return map1_dense(f, out, x, shape_numel(shape));
  strided_loop<2>(shape, {contiguous_strides(shape), x_strides}, [&](const auto& offsets, int64_t n, const auto& s) {
    T* o = out + offsets[0];
    const U* p = x + offsets[1];
    for (int64_t i = 0; i < n; ++i) o[i * s[0]] = f(p[i * s[1]]);
  });
}

// out = f(x, y); the inner run has a unit-stride path and a path for a broadcast second operand
// (bias-like (N, C) * (N, 1)), the two common layouts.
template <typename T, typename U, typename V, typename F>
void map2(const F& f, T* out, const U* x, const V* y, const Shape& shape, const Shape& x_strides,
          const Shape& y_strides) {
  if (dense(shape, x_strides) && dense(shape, y_strides)) return map2_dense(f, out, x, y, shape_numel(shape));
  strided_loop<3>(shape, {contiguous_strides(shape), x_strides, y_strides},
                  [&](const auto& offsets, int64_t n, const auto& s) {
                    T* o = out + offsets[0];
                    const U* p = x + offsets[1];
                    const V* q = y + offsets[2];
                    if (s[0] == 1 && s[1] == 1 && s[2] == 1) {
                      for (int64_t i = 0; i < n; ++i) o[i] = f(p[i], q[i]);
                    } else if (s[0] == 1 && s[1] == 1 && s[2] == 0) {
                      const V q0 = *q;
                      for (int64_t i = 0; i < n; ++i) o[i] = f(p[i], q0);
                    } else {
                      for (int64_t i = 0; i < n; ++i) o[i * s[0]] = f(p[i * s[1]], q[i * s[2]]);
                    }
                  });
}

template <typename T, typename U, typename V, typename W, typename F>
void map3(const F& f, T* out, const U* x, const V* y, const W* z, const Shape& shape, const Shape& x_strides,
          const Shape& y_strides, const Shape& z_strides) {
  if (dense(shape, x_strides) && dense(shape, y_strides) && dense(shape, z_strides))
    return map3_dense(f, out, x, y, z, shape_numel(shape));
  strided_loop<4>(shape, {contiguous_strides(shape), x_strides, y_strides, z_strides},
                  [&](const auto& offsets, int64_t n, const auto& s) {
                    T* o = out + offsets[0];
                    const U* p = x + offsets[1];
                    const V* q = y + offsets[2];
                    const W* r = z + offsets[3];
                    if (s[0] == 1 && s[1] == 1 && s[2] == 1 && s[3] == 1) {
                      for (int64_t i = 0; i < n; ++i) o[i] = f(p[i], q[i], r[i]);
                    } else {
                      for (int64_t i = 0; i < n; ++i) o[i * s[0]] = f(p[i * s[1]], q[i * s[2]], r[i * s[3]]);
                    }
                  });
}

}  // namespace

template <typename T>
void binary_forward(BinaryOp op, T* out, const T* a, const T* b, const Shape& shape, const Shape& a_strides,
                    const Shape& b_strides) {
  switch (op) {
    case BinaryOp::add: return map2([](T x, T y) { return x + y; }, out, a, b, shape, a_strides, b_strides);
    case BinaryOp::sub: return map2([](T x, T y) { return x - y; }, out, a, b, shape, a_strides, b_strides);
    case BinaryOp::mul: return map2([](T x, T y) { return x * y; }, out, a, b, shape, a_strides, b_strides);
    case BinaryOp::div: return map2([](T x, T y) { return x / y; }, out, a, b, shape, a_strides, b_strides);
  }
}

template <typename T>
void div_backward_divisor(T* grad_b, const T* grad_out, const T* a, const T* b, const Shape& shape,
                          const Shape& grad_out_strides, const Shape& a_strides, const Shape& b_strides) {
  map3([](T g, T x, T y) { return -g * x / (y * y); }, grad_b, grad_out, a, b, shape, grad_out_strides, a_strides,
       b_strides);
}

template <typename T>
void unary_forward(UnaryOp op, double scalar, T* out, const T* x, const Shape& shape, const Shape& x_strides) {
  const T s = static_cast<T>(scalar);
  switch (op) {
    case UnaryOp::add_scalar: return map1([s](T v) { return v + s; }, out, x, shape, x_strides);
    case UnaryOp::mul_scalar: return map1([s](T v) { return v * s; }, out, x, shape, x_strides);
    case UnaryOp::pow_scalar:
      if (scalar == 2.0) return map1([](T v) { return v * v; }, out, x, shape, x_strides);
      return map1([s](T v) { return std::pow(v, s); }, out, x, shape, x_strides);
    case UnaryOp::neg: return map1([](T v) { return -v; }, out, x, shape, x_strides);
    case UnaryOp::exp: return map1([](T v) { return vexp(v); }, out, x, shape, x_strides);
    case UnaryOp::log: return map1([](T v) { return std::log(v); }, out, x, shape, x_strides);
    case UnaryOp::tanh: return map1([](T v) { return vtanh(v); }, out, x, shape, x_strides);
    case UnaryOp::sqrt: return map1([](T v) { return std::sqrt(v); }, out, x, shape, x_strides);
    case UnaryOp::rsqrt: return map1([](T v) { return T(1) / std::sqrt(v); }, out, x, shape, x_strides);
    case UnaryOp::gelu:
      return map1([](T v) { return gelu(v); }, out, x, shape, x_strides);
    case UnaryOp::relu: return map1([](T v) { return v > T(0) ? v : T(0); }, out, x, shape, x_strides);
  }
}

bool unary_backward_uses_output(UnaryOp op) {
  switch (op) {
    case UnaryOp::exp: case UnaryOp::tanh: case UnaryOp::sqrt: case UnaryOp::rsqrt: case UnaryOp::relu: return true;
    default: return false;
  }
}

template <typename T>
void unary_backward(UnaryOp op, double scalar, T* grad_x, const T* grad_out, const T* saved, const Shape& shape,
                    const Shape& grad_out_strides, const Shape& saved_strides) {
  auto run = [&](const auto& f) { map2(f, grad_x, grad_out, saved, shape, grad_out_strides, saved_strides); };
  const T p = static_cast<T>(scalar);
  switch (op) {
    case UnaryOp::pow_scalar:  // saved = x
      if (scalar == 2.0) return run([](T g, T x) { return g * T(2) * x; });
      return run([p](T g, T x) { return g * p * std::pow(x, p - T(1)); });
    case UnaryOp::log: return run([](T g, T x) { return g / x; });
    case UnaryOp::gelu:
      return run([](T g, T x) { return g * gelu_derivative(x); });
    case UnaryOp::exp: return run([](T g, T y) { return g * y; });  // saved = y from here on
    case UnaryOp::tanh: return run([](T g, T y) { return g * (T(1) - y * y); });
    case UnaryOp::sqrt: return run([](T g, T y) { return g / (T(2) * y); });
    case UnaryOp::rsqrt: return run([](T g, T y) { return g * T(-0.5) * y * y * y; });
    case UnaryOp::relu: return run([](T g, T y) { return y > T(0) ? g : T(0); });
    case UnaryOp::add_scalar: case UnaryOp::mul_scalar: case UnaryOp::neg:
      ENGINE_ASSERT(false && "constant-derivative ops have no backward kernel");
  }
}

template <typename T, typename C>
void where_forward(T* out, const C* condition, const T* a, const T* b, const Shape& shape,
                   const Shape& condition_strides, const Shape& a_strides, const Shape& b_strides) {
  map3([](C c, T x, T y) { return c != C(0) ? x : y; }, out, condition, a, b, shape, condition_strides, a_strides,
       b_strides);
}

template <typename T, typename C>
void where_backward(bool keep_true, T* grad, const C* condition, const T* grad_out, const Shape& shape,
                    const Shape& condition_strides, const Shape& grad_out_strides) {
  map2([keep_true](C c, T g) { return (c != C(0)) == keep_true ? g : T(0); }, grad, condition, grad_out, shape,
       condition_strides, grad_out_strides);
}

#define INSTANTIATE_FLOAT(T)                                                                                     \
  template void binary_forward<T>(BinaryOp, T*, const T*, const T*, const Shape&, const Shape&, const Shape&);   \
  template void div_backward_divisor<T>(T*, const T*, const T*, const T*, const Shape&, const Shape&,             \
                                        const Shape&, const Shape&);                                              \
  template void unary_forward<T>(UnaryOp, double, T*, const T*, const Shape&, const Shape&);                     \
  template void unary_backward<T>(UnaryOp, double, T*, const T*, const T*, const Shape&, const Shape&,           \
                                  const Shape&);
#define INSTANTIATE_CONDITION(T, C)                                                                              \
  template void where_forward<T, C>(T*, const C*, const T*, const T*, const Shape&, const Shape&, const Shape&, \
                                    const Shape&);                                                               \
  template void where_backward<T, C>(bool, T*, const C*, const T*, const Shape&, const Shape&, const Shape&);
#define INSTANTIATE_ALL_CONDITIONS(T) \
  INSTANTIATE_CONDITION(T, float)     \
  INSTANTIATE_CONDITION(T, double)    \
  INSTANTIATE_CONDITION(T, int32_t)   \
  INSTANTIATE_CONDITION(T, int64_t)

INSTANTIATE_FLOAT(float)
INSTANTIATE_FLOAT(double)
INSTANTIATE_ALL_CONDITIONS(float)
INSTANTIATE_ALL_CONDITIONS(double)

}  // namespace ops::cpu
