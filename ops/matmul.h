// Matrix products, the engine's FLOPs. The CPU runs them on its GEMM kernels (docs/gemm.md): f32
// on our AVX-512 kernel, or with bf16 operands and f32 sums when ops/precision.h says bf16 (AMX or
// AVX512-BF16); the CUDA backend on cuBLASLt (ops/cuda/gemm.h), in f32 or TF32, or with bf16
// operands and f32 sums likewise, with linear's bias and GELU fused into the GEMM (docs/cuda.md).
#pragma once

#include "engine/tensor.h"

namespace ops {

using engine::Tensor;

// a: (..., M, K), b: (..., K, N) -> (..., M, N). Leading (batch) dims broadcast; a 2-D b is shared
// by every batch element. transpose_a/transpose_b use a's / b's last two dims transposed, without
// copying.
Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a = false, bool transpose_b = false);

enum class Activation { none, gelu };

// A fully connected layer with a fused epilogue:
//   y = act(x · weightᵀ + bias)    x: (..., in), weight: (out, in) (PyTorch nn.Linear layout),
//                                  bias: (out) or undefined, y: (..., out)
// The GELU epilogue saves the pre-activation for the backward instead of a separate op's output.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              Activation activation = Activation::none);

}  // namespace ops
