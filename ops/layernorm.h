// Layer normalisation over the last dimension, with the per-row mean and reciprocal standard
// deviation saved for the backward (llm.c's layernorm), alone or fused with the residual add
// before it (llm.c's fused_residual_forward).
#pragma once

#include "engine/tensor.h"

namespace ops {

using engine::Tensor;

// x: (..., C), weight: (C), bias: (C) or undefined -> (..., C)
//   y = (x - mean) / sqrt(var + eps) * weight + bias, var the biased variance.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps);

// The residual stream after an add, and its layer norm.
struct ResidualLayerNorm {
  Tensor residual;  // (..., C) = x + branch
  Tensor normed;    // (..., C) = layer_norm(residual, weight, bias, eps)
};

// x, branch: (..., C) of one shape, weight: (C), bias: (C) or undefined. The residual add of a
// pre-LN transformer and the layer norm that reads its sum, as one op: one pass over the rows on
// each device (the sum is normalised while it is written), and one backward pass that gives the
// gradient of x and branch, the residual's own gradient plus the norm's (the same tensor for
// both), with the parameters' gradients. The values are those of x + branch, then layer_norm.
ResidualLayerNorm residual_layer_norm(const Tensor& x, const Tensor& branch, const Tensor& weight, const Tensor& bias,
                                      double eps);

}  // namespace ops
