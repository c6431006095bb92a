// linear on CUDA: its GEMMs on cuBLASLt (ops/cuda/gemm.h) with the bias, bias + GELU and
// bias-gradient epilogues fused where cuBLASLt has an algorithm for them, and the kernels that do the
// same work where it has none (and in f64): the bias + GELU epilogue after the GEMM, its backward,
// and the bias gradient as a deterministic column sum.
//
// Legend: N = R = rows (all leading dims of x folded), I = input features, O = output features.
// Kernels write their outputs (=); the autograd engine accumulates parameter gradients.
// All pointers are device pointers to row-major data, contiguous unless a leading dimension is given.
#pragma once

#include <cstdint>

#include "engine/cuda/cuda_api.h"

namespace ops::cuda {

// y: (R, O) = x · weightᵀ + bias (bias may be null); with gelu, pre: (R, O) = that and y = gelu(pre).
// x: (R, I) stored with leading dimension ldx, or (I, R) when x_transposed; weight: (O, I) with ldw,
// or (I, O) when weight_transposed. I >= 1. bf16_operands: x and weight rounded to bf16 for the
// product (ops/precision.h); bias and GELU act on the f32 sums either way.
template <typename T>
void linear_forward(const T* x, int64_t ldx, bool x_transposed, const T* weight, int64_t ldw, bool weight_transposed,
                    const T* bias, T* y, T* pre, int64_t R, int64_t I, int64_t O, bool gelu, bool bf16_operands,
                    cudaStream_t stream);

// grad_weight: (O, I) = grad_preᵀ · x, or += with `accumulate` (beta = 1: the weight's gradient
// accumulated in place), with grad_pre: (R, O) and x as in linear_forward; R >= 1.
// When grad_bias is not null and cuBLASLt can fuse it, grad_bias: (O) = Σ over rows of grad_pre in
// the same GEMM (cuBLASLt's BGRADB), and the result is true; false means grad_bias was not written
// (the caller runs column_sums). Never fused with bf16 operands: the epilogue would sum the rounded
// copy of grad_pre, where the bias gradient stays f32.
template <typename T>
[[nodiscard]] bool linear_weight_gradient(const T* grad_pre, const T* x, int64_t ldx, bool x_transposed,
                                          T* grad_weight, bool accumulate, T* grad_bias, int64_t R, int64_t I, int64_t O,
                                          bool bf16_operands, cudaStream_t stream);

// y: (N, O) in place: y += bias (bias may be null), then, when gelu, pre = y and y = gelu(pre).
// pre: (N, O), may be null when !gelu. GELU is the tanh approximation (GPT-2's gelu_new).
template <typename T>
void linear_epilogue(T* y, T* pre, const T* bias, int64_t N, int64_t O, bool gelu, cudaStream_t stream);

// grad_pre: (n) = grad_y · gelu'(pre), elementwise.
template <typename T>
void gelu_backward(T* grad_pre, const T* grad_y, const T* pre, int64_t n, cudaStream_t stream);

// How many row chunks column_sums splits N rows into: its scratch `partials` holds
// column_sum_chunks(N) · O doubles.
int64_t column_sum_chunks(int64_t N);

// out: (O) = Σ over rows of g: (N, O). Two passes, each in a fixed order: every chunk of rows is
// summed in double in row order into partials (chunks, O), then the chunks are summed in chunk
// order. The result does not depend on the grid, and there are no atomics.
template <typename T>
void column_sums(T* out, double* partials, const T* g, int64_t N, int64_t O, cudaStream_t stream);

}  // namespace ops::cuda
