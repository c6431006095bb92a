// CUDA elementwise ops under the kernel emulator against the CPU ops (tests/common/elementwise_checks.h).
#include <doctest/doctest.h>

#include "common/cuda_ready.h"
#include "common/elementwise_checks.h"

TEST_CASE("emulated CUDA elementwise ops match the CPU: f32") {
  if (!cuda_ready()) return;
  elementwise_checks::check_all(engine::Dtype::f32);
}

TEST_CASE("emulated CUDA elementwise ops match the CPU: f64") {
  if (!cuda_ready()) return;
  elementwise_checks::check_all(engine::Dtype::f64);
}
