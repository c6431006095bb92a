// CPU kernels for elementwise ops.
//
// Every operand is a raw pointer plus element strides already broadcast to the iteration `shape`
// (engine::broadcast_strides: stride 0 on repeated dimensions), so one kernel serves contiguous,
// non-contiguous and broadcast operands alike. Outputs are contiguous tensors of `shape`.
// Kernels know nothing of autograd: ops/elementwise.cpp composes them into forward and backward.
// Backward kernels write (=) fresh input gradients; the autograd engine accumulates them.
#pragma once

#include "engine/shape.h"

namespace ops::cpu {

using engine::Shape;

enum class BinaryOp { add, sub, mul, div };

// Unary maps; the `scalar` argument of the kernels is the constant of add_scalar / mul_scalar /
// pow_scalar and is ignored by the others.
enum class UnaryOp { add_scalar, mul_scalar, pow_scalar, neg, exp, log, tanh, sqrt, rsqrt, gelu, relu };

// out = a (op) b.
template <typename T>
void binary_forward(BinaryOp op, T* out, const T* a, const T* b, const Shape& shape, const Shape& a_strides,
                    const Shape& b_strides);

// grad_b = -grad_out * a / b^2: the gradient of a / b with respect to the divisor, before it is
// summed down to b's shape.
template <typename T>
void div_backward_divisor(T* grad_b, const T* grad_out, const T* a, const T* b, const Shape& shape,
                          const Shape& grad_out_strides, const Shape& a_strides, const Shape& b_strides);

// out = f(x).
template <typename T>
void unary_forward(UnaryOp op, double scalar, T* out, const T* x, const Shape& shape, const Shape& x_strides);

// grad_x = grad_out * f'(x). `saved` is the op's input x for pow_scalar, log and gelu, and its
// output y = f(x) for exp, tanh, sqrt, rsqrt and relu (whichever gives f' most cheaply).
// add_scalar, mul_scalar and neg have constant derivatives and need no kernel.
template <typename T>
void unary_backward(UnaryOp op, double scalar, T* grad_x, const T* grad_out, const T* saved, const Shape& shape,
                    const Shape& grad_out_strides, const Shape& saved_strides);

// True when `op`'s backward kernel reads the op's output rather than its input.
bool unary_backward_uses_output(UnaryOp op);

// out = condition != 0 ? a : b. condition has any element type C.
template <typename T, typename C>
void where_forward(T* out, const C* condition, const T* a, const T* b, const Shape& shape,
                   const Shape& condition_strides, const Shape& a_strides, const Shape& b_strides);

// grad = (condition != 0) == keep_true ? grad_out : 0: routes the gradient of where/masked_fill to
// the operand that was selected.
template <typename T, typename C>
void where_backward(bool keep_true, T* grad, const C* condition, const T* grad_out, const Shape& shape,
                    const Shape& condition_strides, const Shape& grad_out_strides);

}  // namespace ops::cpu
