// CUDA rotary op on a real GPU (skips without one) against the CPU op (tests/common/rotary_checks.h).
#include <doctest/doctest.h>

#include "common/cuda_ready.h"
#include "common/rotary_checks.h"

TEST_CASE("CUDA rotary matches the CPU: f32") {
  if (!cuda_ready()) return;
  rotary_checks::check_all(engine::Dtype::f32);
}

TEST_CASE("CUDA rotary matches the CPU: f64") {
  if (!cuda_ready()) return;
  rotary_checks::check_all(engine::Dtype::f64);
}
