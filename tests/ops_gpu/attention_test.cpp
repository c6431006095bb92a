// ops::attention's CUDA kernels on a real GPU against the CPU op (tests/common/attention_checks.h),
// at larger sizes than the emulator affords. Skips with a message when no GPU is usable.
#include <doctest/doctest.h>

#include "common/attention_checks.h"
#include "common/cuda_ready.h"

TEST_CASE("attention on the GPU matches the CPU (f32)") {
  if (!cuda_ready()) return;
  engine::Generator gen(21);
  attention_checks::check_standard_cases(engine::Dtype::f32, 7, gen);
  attention_checks::check_case({2, 4, 300, 300, 64, 64, true}, engine::Dtype::f32, gen, 1e-5);
}

TEST_CASE("attention on the GPU matches the CPU (f64)") {
  if (!cuda_ready()) return;
  engine::Generator gen(22);
  attention_checks::check_standard_cases(engine::Dtype::f64, 5, gen);
}

TEST_CASE("attention with dropout on the GPU matches the CPU, mask included") {
  if (!cuda_ready()) return;
  engine::Generator gen(24);
  attention_checks::check_dropout_cases(engine::Dtype::f32, 5, gen);
  attention_checks::check_dropout_cases(engine::Dtype::f64, 3, gen);
}

TEST_CASE("attention on the GPU with large heads raises shared memory or halves its tiles") {
  if (!cuda_ready()) return;
  engine::Generator gen(23);
  attention_checks::check_large_heads(engine::Dtype::f32, gen);
  attention_checks::check_large_heads(engine::Dtype::f64, gen);
}

TEST_CASE("attention with a score bias on the GPU matches the CPU and the widened attention") {
  if (!cuda_ready()) return;
  engine::Generator gen(25);
  attention_checks::check_score_bias_cases(engine::Dtype::f32, 5, gen);
  attention_checks::check_widened_cases(engine::Dtype::f32, engine::Device::cuda(), 300, gen);
  attention_checks::check_nan_propagates(engine::Dtype::f32, engine::Device::cuda(), 400, gen);
}
