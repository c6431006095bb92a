// Layer normalisation over the last dimension, with the per-row mean and reciprocal standard
// deviation saved for the backward (llm.c's layernorm).
#pragma once

#include "engine/tensor.h"

namespace ops {

using engine::Tensor;

// x: (..., C), weight: (C), bias: (C) or undefined -> (..., C)
//   y = (x - mean) / sqrt(var + eps) * weight + bias, var the biased variance.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps);

}  // namespace ops
