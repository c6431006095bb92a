// CUDA kernels of ops/elementwise.h. Every operand is a raw device pointer walked through one
// DeviceLayout (ops/cuda/device_layout.h): operand 0 is the output (contiguous), the others carry
// their broadcast strides (0 on repeated dimensions), so contiguous, non-contiguous and broadcast
// operands share one kernel. The operation enums are the CPU kernels' (ops/cpu/elementwise.h).
// Backward kernels write (=) fresh input gradients; the autograd engine accumulates them.
#pragma once

#include "engine/cuda/backend_kernels.h"
#include "ops/cpu/elementwise.h"

namespace ops::cuda {

using cpu::BinaryOp;
using cpu::UnaryOp;
using engine::cuda::DeviceLayout;

// out = a (op) b.   layout operands: out, a, b
template <typename T>
void binary_forward(BinaryOp op, T* out, const T* a, const T* b, const DeviceLayout<3>& layout, cudaStream_t stream);

// grad_b = -grad_out * a / b^2 (before it is summed to b's shape).   layout operands: grad_b, grad_out, a, b
template <typename T>
void div_backward_divisor(T* grad_b, const T* grad_out, const T* a, const T* b, const DeviceLayout<4>& layout,
                          cudaStream_t stream);

// out = f(x); `scalar` is the constant of add_scalar / mul_scalar / pow_scalar.   layout operands: out, x
template <typename T>
void unary_forward(UnaryOp op, double scalar, T* out, const T* x, const DeviceLayout<2>& layout, cudaStream_t stream);

// grad_x = grad_out * f'(x); `saved` as in cpu::unary_backward (x or f(x), see
// cpu::unary_backward_uses_output).   layout operands: grad_x, grad_out, saved
template <typename T>
void unary_backward(UnaryOp op, double scalar, T* grad_x, const T* grad_out, const T* saved,
                    const DeviceLayout<3>& layout, cudaStream_t stream);

// out = condition != 0 ? a : b, condition of any element type C.   layout operands: out, condition, a, b
template <typename T, typename C>
void where_forward(T* out, const C* condition, const T* a, const T* b, const DeviceLayout<4>& layout,
                   cudaStream_t stream);

// grad = (condition != 0) == keep_true ? grad_out : 0.   layout operands: grad, condition, grad_out
template <typename T, typename C>
void where_backward(bool keep_true, T* grad, const C* condition, const T* grad_out, const DeviceLayout<3>& layout,
                    cudaStream_t stream);

}  // namespace ops::cuda
