// The transformer's MLP as one op and one autograd node (llm.c's fused matmul + GELU pair):
//
//   pre = x · fc_weightᵀ + fc_bias,   hidden = gelu(pre),   y = hidden · proj_weightᵀ + proj_bias
//
// What linear(linear(x, fc, gelu), proj) computes, bit for bit on the CPU, with a backward that the
// two linear nodes cannot fuse: on CUDA the output gradient goes through proj_weight straight into
// the pre-activation gradient with cuBLASLt's DGELU epilogue (the hidden gradient never reaches
// memory), and the weight gradients take the bias gradient in the same GEMM (BGRADB) where cuBLASLt
// fuses it. With recompute_gelu the node keeps only pre and recomputes hidden = gelu(pre) in the
// backward (llm.c's `-r 1`): one (R, F) activation less per layer for one elementwise pass.
// Products run in the precision ops/precision.h sets, the backward in its forward's.
//
// Legend: R = rows of x with its leading dims folded, C = in features, F = hidden features,
// O = out features.
#pragma once

#include "engine/tensor.h"

namespace ops {

using engine::Tensor;

// x: (..., C), fc_weight: (F, C), fc_bias: (F), proj_weight: (O, F), proj_bias: (O) -> y: (..., O).
// The weights in PyTorch's nn.Linear layout; x must not be empty.
Tensor mlp(const Tensor& x, const Tensor& fc_weight, const Tensor& fc_bias, const Tensor& proj_weight,
           const Tensor& proj_bias, bool recompute_gelu = false);

}  // namespace ops
