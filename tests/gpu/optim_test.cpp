// AdamW, SGD and clip_grad_norm on a real GPU (engine_cuda) against the same on the CPU
// (tests/common/optim_checks.h); each test skips with a message when no GPU is usable.
#include <doctest/doctest.h>

#include "common/cuda_ready.h"
#include "common/optim_checks.h"

TEST_CASE("GPU: AdamW follows the CPU trajectory") {
  if (!cuda_ready()) return;
  engine::Generator gen(21);
  optim_checks::check_adamw(engine::Dtype::f32, /*many=*/true, gen);
  optim_checks::check_adamw(engine::Dtype::f64, /*many=*/false, gen);
}

TEST_CASE("GPU: SGD (plain, momentum, nesterov) follows the CPU trajectory") {
  if (!cuda_ready()) return;
  engine::Generator gen(22);
  optim_checks::check_sgd(engine::Dtype::f32, /*many=*/true, gen);
  optim_checks::check_sgd(engine::Dtype::f64, /*many=*/false, gen);
}

TEST_CASE("GPU: clip_grad_norm matches the CPU and is deterministic") {
  if (!cuda_ready()) return;
  engine::Generator gen(23);
  optim_checks::check_clip_grad_norm(/*many=*/true, gen);
}

TEST_CASE("GPU: a tensor longer than one kernel-argument table continues into the next launch") {
  if (!cuda_ready()) return;
  engine::Generator gen(24);
  optim_checks::check_table_overflow(gen);
}
