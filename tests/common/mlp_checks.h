// One check body for the fused MLP op on CUDA against the CPU op: f32 and f64 (f64 runs the unfused
// kernels: cuBLASLt's epilogues are f32), a hidden width cuBLASLt's GELU_AUX_BIAS and DGELU epilogues
// take (a multiple of 8) and one they refuse (the GEMM-then-kernel fallback), a strided input,
// recomputed GELU, and bf16 products against the CPU's bf16 path. Outputs and gradients come from
// fresh device allocations, which the emulator fills with NaN. Run by tests/ops_emu and tests/ops_gpu.
#pragma once

#include <doctest/doctest.h>

#include <vector>

#include "common/backend_checks.h"
#include "common/cuda_op_compare.h"
#include "engine/rng.h"
#include "ops/mlp.h"
#include "ops/precision.h"

namespace mlp_checks {

using cuda_op_compare::Input;
using engine::Dtype;
using engine::Tensor;

// The MLP forward and backward on both devices for x: (2, 13, C), hidden width F, output width O.
inline void check_shapes(engine::Generator& gen, Dtype dtype, int64_t C, int64_t F, int64_t O, bool recompute,
                         double tolerance) {
  auto random = [&](const engine::Shape& shape) { return Tensor::randn(shape, gen, dtype); };
  auto mlp = [&](const std::vector<Tensor>& in) { return ops::mlp(in[0], in[1], in[2], in[3], in[4], recompute); };
  cuda_op_compare::check_forward_backward(
      mlp, {{random({2, 13, C})}, {random({F, C})}, {random({F})}, {random({O, F})}, {random({O})}}, gen, tolerance);
}

inline void check_mlp(engine::Generator& gen, Dtype dtype) {
  const double tolerance = cuda_op_compare::tolerance_for(dtype);
  auto random = [&](const engine::Shape& shape) { return Tensor::randn(shape, gen, dtype); };
  for (bool recompute : {false, true}) {
    CAPTURE(recompute);
    check_shapes(gen, dtype, 11, 40, 9, recompute, tolerance);  // F = 40: the epilogues fused (f32)
    check_shapes(gen, dtype, 11, 30, 9, recompute, tolerance);  // F = 30: refused, the kernels run
  }
  // A transposed input: copied to rows before the GEMM.
  auto mlp = [](const std::vector<Tensor>& in) { return ops::mlp(in[0], in[1], in[2], in[3], in[4]); };
  cuda_op_compare::check_forward_backward(
      mlp,
      {{random({6, 4, 7}), [](const Tensor& t) { return t.transpose(0, 2); }},
       {random({16, 6})}, {random({16})}, {random({5, 16})}, {random({5})}},
      gen, tolerance);
}

// bf16 products: cuBLASLt multiplies bf16 copies of the operands with f32 sums and the CPU's
// gemm_bf16 rounds the same operands alike, so the two agree to f32 summation error (the f32
// tolerance), fused epilogues and not, GELU kept and recomputed.
inline void check_bf16_products(engine::Generator& gen) {
  const ops::PrecisionScope bf16(ops::Precision::bf16);
  for (bool recompute : {false, true}) {
    CAPTURE(recompute);
    for (int64_t F : {48, 30}) check_shapes(gen, Dtype::f32, 45, F, 24, recompute, cuda_op_compare::tolerance_for(Dtype::f32));
  }
}

}  // namespace mlp_checks
