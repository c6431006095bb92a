// Elementwise ops: broadcasting binary arithmetic (NumPy rules), scalar ops, unary math and
// activations, select and mask. All are differentiable in their floating operands.
//
// Gradient convention for every op in ops/: a backward writes fresh tensors for its inputs'
// gradients; the autograd engine accumulates them (engine/autograd.h).
#pragma once

#include "engine/tensor.h"

namespace ops {

using engine::Tensor;

// out = a (op) b, with a and b broadcast to a common shape. Same floating dtype and device.
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);

Tensor add_scalar(const Tensor& x, double value);
Tensor mul_scalar(const Tensor& x, double value);
Tensor pow_scalar(const Tensor& x, double exponent);

Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
// GELU with the tanh approximation (GPT-2's gelu_new):
//   0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
Tensor gelu(const Tensor& x);
Tensor relu(const Tensor& x);

// out = condition ? a : b, all three broadcast together. condition is any dtype; nonzero is true.
// Differentiable in a and b.
Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b);
// out = mask ? value : x, mask broadcast to x's shape (nonzero is true). Differentiable in x.
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

}  // namespace ops

// Operators on tensors, found by argument-dependent lookup.
namespace engine {
inline Tensor operator+(const Tensor& a, const Tensor& b) { return ops::add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return ops::sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return ops::mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return ops::div(a, b); }
inline Tensor operator-(const Tensor& x) { return ops::neg(x); }
inline Tensor operator+(const Tensor& x, double s) { return ops::add_scalar(x, s); }
inline Tensor operator-(const Tensor& x, double s) { return ops::add_scalar(x, -s); }
inline Tensor operator*(const Tensor& x, double s) { return ops::mul_scalar(x, s); }
inline Tensor operator*(double s, const Tensor& x) { return ops::mul_scalar(x, s); }
inline Tensor operator/(const Tensor& x, double s) { return ops::mul_scalar(x, 1.0 / s); }
}  // namespace engine
