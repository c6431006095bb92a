// Runs one op on the CPU and on CUDA from the same random inputs and compares the outputs and the
// gradients of every input (backward with the same random seed on both devices). Shared by the
// per-op CUDA check bodies (tests/common/<op>_checks.h).
//
// Inputs are given as contiguous "bases"; the op under test receives the bases of its device and
// takes any views itself (transpose, narrow), so non-contiguous operands are exercised on CUDA too.
#pragma once

#include <doctest/doctest.h>

#include <functional>
#include <vector>

#include "common/backend_checks.h"
#include "engine/autograd.h"
#include "engine/rng.h"
#include "engine/tensor.h"

namespace op_compare {

using backend_checks::kCuda;
using backend_checks::relative_error;
using engine::Dtype;
using engine::Tensor;

// f32: one rounding per element, or a double sum rounded once, plus device libm ulps (~1e-7):
// 1e-5 leaves margin. f64: the same arithmetic up to a few ulps and a different summation tree.
inline double tolerance(Dtype dtype) { return dtype == Dtype::f32 ? 1e-5 : 1e-12; }

struct Input {
  Tensor base;         // on the CPU, contiguous
  bool differentiable;  // requires grad on both devices
};

using Op = std::function<Tensor(const std::vector<Tensor>&)>;

// op(bases) on both devices: outputs and every differentiable input's gradient agree within `tol`.
inline void check_forward_backward(const Op& op, const std::vector<Input>& inputs, engine::Generator& gen,
                                   double tol) {
  std::vector<Tensor> cpu, cuda;
  for (const Input& input : inputs) {
    cpu.push_back(input.base.detach().contiguous());
    cuda.push_back(input.base.to(kCuda));
    if (input.differentiable) {
      cpu.back().requires_grad_();
      cuda.back().requires_grad_();
    }
  }
  const Tensor out_cpu = op(cpu), out_cuda = op(cuda);
  REQUIRE(out_cuda.device() == kCuda);
  CHECK(relative_error(out_cuda, out_cpu) < tol);
  if (!out_cpu.requires_grad()) return;
  const Tensor seed = Tensor::randn(out_cpu.shape(), gen, out_cpu.dtype());
  out_cpu.backward(seed);
  out_cuda.backward(seed.to(kCuda));
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (!inputs[k].differentiable) continue;
    CAPTURE(k);
    REQUIRE(cuda[k].grad().defined());
    CHECK(cuda[k].grad().device() == kCuda);
    CHECK(relative_error(cuda[k].grad(), cpu[k].grad()) < tol);
  }
}

}  // namespace op_compare
