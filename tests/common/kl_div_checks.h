// One test body for ops::kl_div on CUDA, run by test_ops_emu (emulator) and test_ops_gpu (a real
// GPU): the loss and both inputs' gradients compared with the CPU op on fresh random inputs, with a
// non-contiguous input, sizes that are not multiples of the block size, several partial-sum blocks,
// and a detached target (no gradient for it).
//
// Tolerance: f32 relative error < 1e-5 (sums in double; one f32 exp per element in the backward);
// f64 < 1e-12 (the same double sums in a different order).
#pragma once

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "common/backend_checks.h"
#include "engine/autograd.h"
#include "engine/rng.h"
#include "ops/kl_div.h"

namespace kl_div_checks {

using backend_checks::kCuda;
using backend_checks::relative_error;
using engine::Dtype;
using engine::Tensor;

inline double tolerance(Dtype dtype) { return dtype == Dtype::f32 ? 1e-5 : 1e-12; }

// input: (A, B) seen through a transpose of a (B, A) leaf; target: (A, B), detached or not.
inline void check_case(int64_t A, int64_t B, Dtype dtype, bool target_needs_grad, engine::Generator& gen) {
  CAPTURE(A);
  CAPTURE(B);
  CAPTURE(std::string(engine::dtype_name(dtype)));
  CAPTURE(target_needs_grad);
  Tensor x_cpu = Tensor::randn({B, A}, gen, dtype);
  std::vector<double> log_p(size_t(A * B));
  for (double& v : log_p) v = -0.2 - 3.0 * gen.uniform();
  Tensor t_cpu = Tensor::from_vector(log_p, {A, B}, dtype);
  Tensor x_cuda = x_cpu.to(kCuda), t_cuda = t_cpu.to(kCuda);
  for (Tensor* leaf : {&x_cpu, &x_cuda}) leaf->requires_grad_();
  if (target_needs_grad)
    for (Tensor* leaf : {&t_cpu, &t_cuda}) leaf->requires_grad_();

  Tensor loss_cpu = ops::kl_div(x_cpu.transpose(0, 1), t_cpu);
  Tensor loss_cuda = ops::kl_div(x_cuda.transpose(0, 1), t_cuda);
  CHECK(loss_cuda.device() == kCuda);
  CHECK(relative_error(loss_cuda, loss_cpu) < tolerance(dtype));

  loss_cpu.backward(Tensor::full({}, -1.5, dtype));
  loss_cuda.backward(Tensor::full({}, -1.5, dtype, kCuda));
  REQUIRE(x_cuda.grad().defined());
  CHECK(relative_error(x_cuda.grad(), x_cpu.grad()) < tolerance(dtype));
  CHECK(t_cuda.grad().defined() == target_needs_grad);
  if (target_needs_grad) CHECK(relative_error(t_cuda.grad(), t_cpu.grad()) < tolerance(dtype));
}

inline void check_forward_and_backward() {
  engine::Generator gen(77);
  for (Dtype dtype : {Dtype::f32, Dtype::f64}) {
    check_case(7, 33, dtype, true, gen);
    check_case(61, 53, dtype, false, gen);  // 3233 elements: several partial-sum blocks
    check_case(1, 1, dtype, true, gen);
  }
}

}  // namespace kl_div_checks
