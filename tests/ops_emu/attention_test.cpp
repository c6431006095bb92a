// ops::attention's CUDA kernels under the kernel emulator against the CPU op (tests/common/attention_checks.h).
// Small sizes: every emulated thread costs ~60 ns.
#include <doctest/doctest.h>

#include "common/attention_checks.h"
#include "common/cuda_ready.h"

TEST_CASE("attention on CUDA matches the CPU (f32)") {
  if (!cuda_ready()) return;
  engine::Generator gen(11);
  attention_checks::check_standard_cases(engine::Dtype::f32, 1, gen);
}

TEST_CASE("attention on CUDA matches the CPU (f64)") {
  if (!cuda_ready()) return;
  engine::Generator gen(12);
  attention_checks::check_standard_cases(engine::Dtype::f64, 1, gen);
}

TEST_CASE("attention with dropout on CUDA matches the CPU, mask included") {
  if (!cuda_ready()) return;
  engine::Generator gen(14);
  attention_checks::check_dropout_cases(engine::Dtype::f32, 1, gen);
  attention_checks::check_dropout_cases(engine::Dtype::f64, 1, gen);
}

TEST_CASE("attention on CUDA with large heads raises shared memory or halves its tiles") {
  if (!cuda_ready()) return;
  engine::Generator gen(13);
  attention_checks::check_large_heads(engine::Dtype::f32, gen);
  attention_checks::check_large_heads(engine::Dtype::f64, gen);
}

TEST_CASE("attention with a score bias on CUDA matches the CPU, bias gradient included") {
  if (!cuda_ready()) return;
  engine::Generator gen(15);
  attention_checks::check_score_bias_cases(engine::Dtype::f32, 1, gen);
  attention_checks::check_score_bias_cases(engine::Dtype::f64, 1, gen);
}

TEST_CASE("attention with a score bias on CUDA equals the widened attention it replaces") {
  if (!cuda_ready()) return;
  engine::Generator gen(16);
  attention_checks::check_widened_cases(engine::Dtype::f32, engine::Device::cuda(), 45, gen);
}

TEST_CASE("attention on CUDA propagates NaN: a NaN key makes exactly the rows that see it NaN") {
  if (!cuda_ready()) return;
  engine::Generator gen(17);
  attention_checks::check_nan_propagates(engine::Dtype::f32, engine::Device::cuda(), 40, gen);
  attention_checks::check_nan_propagates(engine::Dtype::f64, engine::Device::cuda(), 20, gen);
}
