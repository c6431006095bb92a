// One check body for matmul and linear on CUDA (cuBLASLt, its fused epilogues and the fallback
// kernels), compared with the CPU op: batch broadcasting, transposes, strided and copied operands,
// the folded 2-D-weight path, bias/GELU epilogues fused and not, the bias gradient fused into the
// weight-gradient GEMM and not, every gemm_fused epilogue against its definition, and bf16 products
// against the CPU's bf16 path. Run by tests/ops_emu and tests/ops_gpu.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "common/backend_checks.h"
#include "common/cuda_op_compare.h"
#include "engine/rng.h"
#include "engine/autograd.h"
#include "engine/cuda/stream.h"
#include "ops/cuda/gemm.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/precision.h"
#include "ops/reduce.h"

namespace matmul_checks {

using cuda_op_compare::Input;
using engine::Dtype;
using engine::Tensor;

inline void check_matmul(engine::Generator& gen, Dtype dtype) {
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

inline void check_linear(engine::Generator& gen, Dtype dtype) {
  const double tolerance = cuda_op_compare::tolerance_for(dtype);
  auto random = [&](const engine::Shape& shape) { return Tensor::randn(shape, gen, dtype); };
  for (ops::Activation activation : {ops::Activation::none, ops::Activation::gelu}) {
    CAPTURE(int(activation));
    auto linear = [&](const std::vector<Tensor>& in) {
      return ops::linear(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), activation);
    };
    // 150 rows: three row chunks of the bias-gradient column sum, the last partial; 300 outputs:
    // two column blocks, the second partial, and a leading dimension cuBLASLt's GELU epilogue refuses
    // (not a multiple of 8: the unfused kernels run).
    cuda_op_compare::check_forward_backward(linear, {{random({3, 50, 7})}, {random({300, 7})}, {random({300})}},
                                            gen, tolerance);
    // 64 outputs: the bias + GELU epilogue fused into the GEMM (f32; f64 takes the kernels).
    cuda_op_compare::check_forward_backward(linear, {{random({2, 9, 13})}, {random({64, 13})}, {random({64})}},
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

// Every epilogue of ops::cuda::gemm_fused on its own, against its definition on the CPU ops. For
// shapes cuBLASLt fuses (f32, pre's leading dimension a multiple of 8) it must run (return true);
// for f64 it must decline. C and pre start poisoned (NaN) so an element the epilogue skips shows up.
inline void check_gemm_epilogues(engine::Generator& gen, Dtype dtype) {
  using backend_checks::kCuda;
  const double tolerance = cuda_op_compare::tolerance_for(dtype);
  const bool fuses = dtype == Dtype::f32;
  const int64_t M = 11, N = 24, K = 37;
  const Tensor a = Tensor::randn({M, K}, gen, dtype), b = Tensor::randn({K, N}, gen, dtype);
  const Tensor a_stored_transposed = Tensor::randn({K, M}, gen, dtype);  // op(A) = its transpose
  const Tensor bias = Tensor::randn({N}, gen, dtype), pre_in = Tensor::randn({M, N}, gen, dtype);
  const Tensor product = ops::matmul(a, b), biased = ops::add(product, bias);
  const Tensor a_cuda = a.to(kCuda), at_cuda = a_stored_transposed.to(kCuda), b_cuda = b.to(kCuda);
  const Tensor bias_cuda = bias.to(kCuda);
  const cudaStream_t stream = engine::cuda::current_stream();
  ENGINE_DISPATCH_FLOAT(dtype, "check_gemm_epilogues", [&] {
    using T = scalar_t;
    using Fusion = ops::cuda::GemmFusion<T>;
    auto poisoned = [&](const engine::Shape& shape) { return backend_checks::poisoned_pair(shape, dtype).cuda; };
    // C = op(A)·B (op(A) = the stored transpose when trans_a) with `fusion`, into a poisoned C; C, or
    // an undefined tensor when gemm_fused declined (which only f64 may).
    auto fused = [&](const Fusion& fusion, bool trans_a) {
      Tensor c = poisoned({M, N});
      const bool ran = ops::cuda::gemm_fused<T>(fusion, trans_a, false, M, N, K, T(1),
                                                (trans_a ? at_cuda : a_cuda).data<T>(), trans_a ? M : K,
                                                b_cuda.data<T>(), N, T(0), c.data<T>(), N, stream);
      CHECK(ran == fuses);
      return ran ? c : Tensor();
    };
    // C = A·B + bias.
    if (const Tensor c = fused({ops::cuda::GemmEpilogue::bias, bias_cuda.data<T>()}, false); c.defined())
      CHECK(backend_checks::relative_error(c, biased) < tolerance);
    // pre = A·B + bias, C = gelu(pre).
    const Tensor pre = poisoned({M, N});
    if (const Tensor c = fused({ops::cuda::GemmEpilogue::bias_gelu, bias_cuda.data<T>(), pre.data<T>()}, false);
        c.defined()) {
      CHECK(backend_checks::relative_error(pre, biased) < tolerance);
      CHECK(backend_checks::relative_error(c, ops::gelu(biased)) < tolerance);
    }
    // C = (A·B) ⊙ gelu'(pre): the gradient of gelu at pre_in for the seed A·B, from the CPU autograd.
    const Tensor pre_leaf = pre_in.detach().requires_grad_();
    ops::gelu(pre_leaf).backward(product);
    const Tensor pre_given = pre_in.to(kCuda);
    if (const Tensor c = fused({ops::cuda::GemmEpilogue::gelu_backward, nullptr, pre_given.data<T>()}, false);
        c.defined())
      CHECK(backend_checks::relative_error(c, pre_leaf.grad()) < tolerance);
    // C = op(A)·B with op(A) = stored Aᵀ, bias_gradient (M) = Σ_k op(A)[m, k] = column sums of stored A.
    const Tensor bias_gradient = poisoned({M});
    if (const Tensor c = fused({ops::cuda::GemmEpilogue::bias_gradient, nullptr, nullptr, bias_gradient.data<T>()},
                               true);
        c.defined()) {
      CHECK(backend_checks::relative_error(c, ops::matmul(a_stored_transposed, b, true, false)) < tolerance);
      CHECK(backend_checks::relative_error(bias_gradient, ops::sum(a_stored_transposed, {0})) < tolerance);
    }
    // pre with a leading dimension cuBLASLt refuses (20, not a multiple of 8): declined, C untouched.
    const Tensor narrow_c = poisoned({M, 20}), narrow_pre = poisoned({M, 20});
    const Fusion narrow{ops::cuda::GemmEpilogue::bias_gelu, bias_cuda.data<T>(), narrow_pre.data<T>()};
    CHECK_FALSE(ops::cuda::gemm_fused<T>(narrow, false, false, M, 20, K, T(1), a_cuda.data<T>(), K, b_cuda.data<T>(),
                                         N, T(0), narrow_c.data<T>(), 20, stream));
    CHECK(std::isnan(narrow_c.to(engine::Device::cpu()).to_vector<T>()[0]));
  });
}

// bf16 products (ops/precision.h) on CUDA: cuBLASLt multiplies bf16 copies of the operands with f32
// sums, the CPU's gemm_bf16 rounds the same operands alike, so the two agree to f32 summation
// error (the f32 tolerance), forward and backward, through matmul's batched and folded paths and
// linear's fused and unfused epilogues. And bf16 did run: the result is not the fp32 one.
inline void check_bf16_products(engine::Generator& gen) {
  using backend_checks::kCuda;
  const double tolerance = cuda_op_compare::tolerance_for(Dtype::f32);
  auto random = [&](const engine::Shape& shape) { return Tensor::randn(shape, gen); };
  const ops::PrecisionScope bf16(ops::Precision::bf16);
  auto matmul = [](const std::vector<Tensor>& in) { return ops::matmul(in[0], in[1]); };
  cuda_op_compare::check_forward_backward(matmul, {{random({37, 53})}, {random({53, 19})}}, gen, tolerance);
  cuda_op_compare::check_forward_backward(matmul, {{random({3, 9, 40})}, {random({3, 40, 6})}}, gen, tolerance);
  cuda_op_compare::check_forward_backward(matmul, {{random({2, 7, 30})}, {random({30, 5})}}, gen, tolerance);
  for (ops::Activation activation : {ops::Activation::none, ops::Activation::gelu}) {
    CAPTURE(int(activation));
    auto linear = [&](const std::vector<Tensor>& in) { return ops::linear(in[0], in[1], in[2], activation); };
    for (int64_t outputs : {24, 30})  // GELU fused (a multiple of 8) and not
      cuda_op_compare::check_forward_backward(
          linear, {{random({2, 11, 45})}, {random({outputs, 45})}, {random({outputs})}}, gen, tolerance);
  }
  const Tensor a = random({16, 64}).to(kCuda), b = random({64, 16}).to(kCuda);
  const Tensor in_bf16 = ops::matmul(a, b);
  Tensor in_fp32;
  {
    const ops::PrecisionScope fp32(ops::Precision::fp32);
    in_fp32 = ops::matmul(a, b);
  }
  CHECK(backend_checks::relative_error(in_bf16, in_fp32) > 1e-4);  // bf16 operands: ~1e-3 off fp32
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
