// Kernel 0 of layer_norm: the readable version of the op (ops/layernorm.h), forward and backward in
// double, the oracle the tests compare the fast kernels against (ops/cpu/layernorm.h,
// ops/cuda/layernorm.h). For each row x of C values, with weight γ and bias β:
//   μ = (1/C) Σ_c x_c,   σ² = (1/C) Σ_c (x_c − μ)²,   r = 1/√(σ² + ε),   x̂_c = (x_c − μ)·r
//   y_c = γ_c·x̂_c + β_c
// and for an upstream gradient g = ∂L/∂y, with n_c = g_c·γ_c (docs/one_step.md derives it):
//   ∂L/∂x_j = r·(n_j − mean_c(n_c) − x̂_j·mean_c(n_c·x̂_c)),   ∂L/∂γ_c = Σ_rows g_c·x̂_c,   ∂L/∂β_c = Σ_rows g_c
//
// residual_layer_norm is the residual add r = x + a, then the same norm of r; r feeds both the norm
// and the rest of the residual stream, so with that path's gradient dr:
//   ∂L/∂x = ∂L/∂a = dr + (the norm's ∂L/∂r above),   ∂L/∂γ, ∂L/∂β as above with r for x
//
//   N = rows (the leading dims folded), C = channels (the last dim)
#pragma once

#include "engine/tensor.h"

namespace ops::reference {

using engine::Tensor;

// x: (..., C), weight: (C), bias: (C) or undefined, any floating dtype and device -> (..., C), f64
// on the CPU.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps);

struct LayerNormGradients {
  Tensor dx;       // (..., C)
  Tensor dweight;  // (C)
  Tensor dbias;    // (C)
};

// The gradients of layer_norm(x, weight, bias, eps) for the upstream gradient dy: (..., C), f64 on
// the CPU. The bias does not enter them; its gradient is the column sums of dy all the same.
LayerNormGradients layer_norm_backward(const Tensor& x, const Tensor& weight, double eps, const Tensor& dy);

struct ResidualLayerNormOutputs {
  Tensor residual;  // (..., C) = x + branch
  Tensor normed;    // (..., C) = layer_norm(residual)
};

// x, branch: (..., C) -> residual and its layer norm, f64 on the CPU.
ResidualLayerNormOutputs residual_layer_norm(const Tensor& x, const Tensor& branch, const Tensor& weight,
                                             const Tensor& bias, double eps);

// The gradients of residual_layer_norm for the upstream gradients d_residual (the residual path's)
// and dy (the norm's), both (..., C): dx (which is also the branch's gradient), dweight, dbias.
LayerNormGradients residual_layer_norm_backward(const Tensor& x, const Tensor& branch, const Tensor& weight,
                                                double eps, const Tensor& d_residual, const Tensor& dy);

}  // namespace ops::reference
