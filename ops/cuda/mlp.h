// The transformer MLP's backward GEMM with cuBLASLt's DGELU epilogue (ops/mlp.h): the gradient of
// the hidden layer's pre-activation straight from the output gradient, without the hidden
// gradient ever reaching memory.
//
// Legend: R = rows (all leading dims of x folded), F = hidden features, O = output features.
// All pointers are device pointers to contiguous row-major data; outputs are written (=).
#pragma once

#include <cstdint>

#include "engine/cuda/cuda_api.h"

namespace ops::cuda {

// grad_pre: (R, F) = (grad_y · proj_weight) ⊙ gelu'(pre), grad_y: (R, O), proj_weight: (O, F),
// pre: (R, F). One GEMM with the DGELU epilogue where cuBLASLt has an algorithm for it (f32, F a
// multiple of 8), else the GEMM and then the gelu_backward kernel in place. O >= 1. bf16_operands:
// grad_y and proj_weight rounded to bf16 for the product (ops/precision.h); gelu' acts on f32 sums.
template <typename T>
void mlp_pre_activation_gradient(T* grad_pre, const T* grad_y, const T* proj_weight, const T* pre, int64_t R,
                                 int64_t F, int64_t O, bool bf16_operands, cudaStream_t stream);

}  // namespace ops::cuda
