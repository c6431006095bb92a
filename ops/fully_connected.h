// The pieces of a fully connected layer, pre = x·Wᵀ + b, that linear (ops/matmul.h) and the fused
// MLP (ops/mlp.h) share, so that the two give the same values bit for bit: the forward on either
// device, and the parameter gradients of the backward. W's gradient goes straight into the leaf's
// .grad when the autograd engine hands it out (engine::leaf_grad_destination: the first backward
// after zero_grad writes it, later ones add with beta = 1, as llm.c and PyTorch's fused paths
// accumulate micro-batches), else into a fresh tensor the engine adds.
//
// Legend: R = rows (the input's leading dims folded), I = in features, O = out features.
#pragma once

#include <cstddef>
#include <utility>

#include "engine/autograd.h"
#include "engine/tensor.h"
#include "ops/precision.h"

namespace ops {

using engine::Tensor;

// y: (R, O) = x_rows: (R, I) · weightᵀ: (O, I) + bias: (O) (bias may be undefined); with `gelu`,
// pre: (R, O) = that and y = gelu(pre). On the CPU one GEMM whose epilogue adds the bias and applies
// GELU to each block while it is in cache; on CUDA one cuBLASLt GEMM with the BIAS or GELU_AUX_BIAS
// epilogue. Products in `precision`; y and pre are written, never read.
void fully_connected_forward(const Tensor& x_rows, const Tensor& weight, const Tensor& bias, bool gelu,
                             const Tensor& y, const Tensor& pre, Precision precision);

// {weight gradient (O, I) = grad_preᵀ · x_rows, bias gradient (O) = Σ over rows of grad_pre}, each
// only when wanted (else undefined), for `node`, whose input `weight_input` is W. grad_pre: (R, O)
// contiguous, x_rows: (R, I). On CUDA one cuBLASLt GEMM gives both where its bias-gradient epilogue
// fuses (f32 products), else the GEMM and deterministic column sums; products in `precision`.
std::pair<Tensor, Tensor> linear_parameter_gradients(const engine::Node& node, size_t weight_input,
                                                     const Tensor& grad_pre, const Tensor& x_rows, bool want_weight,
                                                     bool want_bias, Precision precision);

}  // namespace ops
