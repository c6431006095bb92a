// One check body for matmul and linear on CUDA (cuBLAS + the epilogue kernels), compared with the
// CPU op: batch broadcasting, transposes, strided and copied operands, the folded 2-D-weight
// path, bias/GELU epilogues and the deterministic bias gradient. Run by tests/ops_emu and
// tests/ops_gpu.
#pragma once

#include <doctest/doctest.h>

#include <vector>

#include "common/backend_checks.h"
#include "common/cuda_op_compare.h"
#include "engine/rng.h"
#include "ops/cuda/gemm.h"
#include "ops/matmul.h"

namespace matmul_checks {

using cuda_op_compare::Input;
using engine::DType;
using engine::Tensor;

inline void check_matmul(engine::Generator& gen, DType dtype) {
  const double tolerance = cuda_op_compare::tolerance_for(dtype);
  auto random = [&](const engine::Shape& shape) { return Tensor::randn(shape, gen, dtype); };
  struct Case {
    const char* name;
    Input a, b;
    bool transpose_a = false, transpose_b = false;
  };
  const std::vector<Case> cases = {
      {"2-D", {random({7, 13})}, {random({13, 5})}},
      // a broadcast along b's batch and b along a's: batch offsets with no common step.
      {"two-sided broadcast", {random({3, 1, 6, 9})}, {random({4, 9, 5})}},
      // a shared by every batch element: one strided-batched call with stride 0.
      {"2-D a, batched b", {random({6, 9})}, {random({3, 9, 4})}},
      {"transpose flags", {random({2, 9, 6})}, {random({2, 5, 9})}, true, true},
      {"transpose flag on a only", {random({3, 9, 6})}, {random({3, 9, 5})}, true, false},
      // A transposed view (no copy: column-major storage), a narrowed view (ld = 20 > N) and a
      // batch dim that is not outermost in memory.
      {"strided views",
       {random({4, 2, 11}), [](const Tensor& t) { return t.transpose(0, 1); }},
       {random({2, 20, 11}), [](const Tensor& t) { return t.transpose(-1, -2).narrow(-1, 3, 7); }}},
      // Neither of the last two dims has unit stride: the operand is copied first.
      {"copied operand", {random({6, 3, 8}), [](const Tensor& t) { return t.transpose(0, 2); }}, {random({6, 5})}},
      // A 2-D b shared by a batch of a's: the batch folds into M (one GEMM), also with transposed b.
      {"folded batch", {random({2, 3, 7, 6})}, {random({6, 5})}},
      {"folded batch, transposed b", {random({2, 3, 7, 6})}, {random({6, 5}), [](const Tensor& t) {
                                                                  return t.transpose(0, 1);
                                                                }}, false, true},
      {"K = 1", {random({4, 5, 1})}, {random({4, 1, 3})}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    cuda_op_compare::check_forward_backward(
        [&](const std::vector<Tensor>& in) { return ops::matmul(in[0], in[1], c.transpose_a, c.transpose_b); },
        {c.a, c.b}, gen, tolerance);
  }

  // K = 0: an empty sum, zeros on both devices.
  const Tensor empty_product = ops::matmul(Tensor::ones({3, 0}, dtype, backend_checks::kCuda),
                                           Tensor::ones({0, 4}, dtype, backend_checks::kCuda));
  CHECK(backend_checks::relative_error(empty_product, Tensor::zeros({3, 4}, dtype)) == 0.0);

  CHECK_THROWS_WITH_AS(ops::matmul(random({2, 3}), random({3, 2}).to(backend_checks::kCuda)),
                       doctest::Contains("matmul: tensors on different devices"), engine::Error);
}

inline void check_linear(engine::Generator& gen, DType dtype) {
  const double tolerance = cuda_op_compare::tolerance_for(dtype);
  auto random = [&](const engine::Shape& shape) { return Tensor::randn(shape, gen, dtype); };
  for (ops::Activation activation : {ops::Activation::none, ops::Activation::gelu}) {
    CAPTURE(int(activation));
    auto linear = [&](const std::vector<Tensor>& in) {
      return ops::linear(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), activation);
    };
    // 150 rows: three row chunks of the bias-gradient column sum, the last partial; 300 outputs:
    // two column blocks, the second partial.
    cuda_op_compare::check_forward_backward(linear, {{random({3, 50, 7})}, {random({300, 7})}, {random({300})}},
                                            gen, tolerance);
    // A transposed input (reshaped by copy), a transposed weight view, no bias.
    cuda_op_compare::check_forward_backward(
        linear,
        {{random({9, 4, 6}), [](const Tensor& t) { return t.transpose(0, 1); }},
         {random({6, 5}), [](const Tensor& t) { return t.transpose(0, 1); }}},
        gen, tolerance);
  }

  // The bias gradient is the same bits on every run: fixed-order sums, no atomics.
  const Tensor x = random({70, 6}).to(backend_checks::kCuda), seed = random({70, 33}).to(backend_checks::kCuda);
  const Tensor weight_values = random({33, 6}).to(backend_checks::kCuda);
  std::vector<Tensor> bias_grads;
  for (int run = 0; run < 2; ++run) {
    Tensor weight = weight_values.detach().requires_grad_();
    Tensor bias = Tensor::ones({33}, dtype, backend_checks::kCuda).requires_grad_();
    ops::linear(x, weight, bias, ops::Activation::gelu).backward(seed);
    bias_grads.push_back(bias.grad());
  }
  CHECK(backend_checks::relative_error(bias_grads[0], bias_grads[1]) == 0.0);
}

// With TF32 allowed, f32 GEMMs may round their inputs to a 10-bit mantissa (2^-11 ≈ 5e-4 relative
// per product) on tensor cores, so the comparison allows 5e-3; the switch is restored after.
inline void check_tf32_switch(engine::Generator& gen) {
  CHECK_FALSE(ops::cuda::allow_tf32());
  ops::cuda::set_allow_tf32(true);
  CHECK(ops::cuda::allow_tf32());
  const Tensor a = Tensor::randn({17, 40}, gen), b = Tensor::randn({40, 9}, gen);
  const double error = backend_checks::relative_error(
      ops::matmul(a.to(backend_checks::kCuda), b.to(backend_checks::kCuda)), ops::matmul(a, b));
  ops::cuda::set_allow_tf32(false);
  CHECK(error < 5e-3);
  CHECK_FALSE(ops::cuda::allow_tf32());
}

}  // namespace matmul_checks
