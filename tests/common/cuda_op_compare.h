// Runs one differentiable op on the CPU and on CUDA from the same random inputs and compares the
// output and the gradient of every differentiable input (backward from the same random seed
// gradient on both devices). Each input is a fresh leaf on its device, optionally seen through a
// view (transpose, narrow, expand, ...) so that kernels meet non-contiguous operands on both
// devices alike. The op's own outputs come from fresh device allocations, which the emulator fills
// with NaN, so an element a kernel forgets shows up.
//
// Used by the per-op check bodies (tests/common/<op>_checks.h), which tests/ops_emu and
// tests/ops_gpu run.
#pragma once

#include <doctest/doctest.h>

#include <functional>
#include <vector>

#include "common/backend_checks.h"
#include "engine/autograd.h"
#include "engine/rng.h"
#include "engine/tensor.h"

namespace cuda_op_compare {

using engine::Tensor;

struct Input {
  Tensor values;                                   // on the CPU
  std::function<Tensor(const Tensor&)> view = {};  // applied to the leaf on each device
  bool differentiable = true;                      // false for indices
};

using Op = std::function<Tensor(const std::vector<Tensor>&)>;

// Leaves on both devices, the op on each, then forward and gradient errors < tolerance
// (backend_checks::relative_error: max |cuda - cpu| / max |cpu|).
inline void check_forward_backward(const Op& op, const std::vector<Input>& inputs, engine::Generator& gen,
                                   double tolerance) {
  std::vector<Tensor> cpu_leaves, cuda_leaves, cpu_args, cuda_args;
  for (const Input& input : inputs) {
    Tensor cpu = input.values.detach(), cuda = input.values.to(backend_checks::kCuda);
    if (input.differentiable) {
      cpu.requires_grad_();
      cuda.requires_grad_();
    }
    cpu_leaves.push_back(cpu);
    cuda_leaves.push_back(cuda);
    cpu_args.push_back(input.view ? input.view(cpu) : cpu);
    cuda_args.push_back(input.view ? input.view(cuda) : cuda);
  }
  const Tensor out_cpu = op(cpu_args), out_cuda = op(cuda_args);
  REQUIRE(out_cuda.device() == backend_checks::kCuda);
  CHECK(backend_checks::relative_error(out_cuda, out_cpu) < tolerance);

  const Tensor seed = Tensor::randn(out_cpu.shape(), gen, out_cpu.dtype());
  out_cpu.backward(seed);
  out_cuda.backward(seed.to(backend_checks::kCuda));
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].differentiable) continue;
    CAPTURE(i);
    REQUIRE(cuda_leaves[i].grad().defined());
    CHECK(backend_checks::relative_error(cuda_leaves[i].grad(), cpu_leaves[i].grad()) < tolerance);
  }
}

// f32: one rounding per element or a sum rounded once, with a different summation order on the
// device (cuBLAS float accumulation vs Eigen's) -> ~1e-6 relative. f64: both in double, ~1e-15.
inline double tolerance_for(engine::Dtype dtype) { return dtype == engine::Dtype::f32 ? 1e-5 : 1e-12; }

}  // namespace cuda_op_compare
