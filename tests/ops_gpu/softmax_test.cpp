// CUDA softmax ops on a real GPU (skips without one) against the CPU ops (tests/common/softmax_checks.h).
#include <doctest/doctest.h>

#include "common/cuda_ready.h"
#include "common/softmax_checks.h"

TEST_CASE("CUDA softmax ops match the CPU: f32") {
  if (!cuda_ready()) return;
  softmax_checks::check_all(engine::Dtype::f32);
}

TEST_CASE("CUDA softmax ops match the CPU: f64") {
  if (!cuda_ready()) return;
  softmax_checks::check_all(engine::Dtype::f64);
}
