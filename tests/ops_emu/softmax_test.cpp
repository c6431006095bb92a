// CUDA softmax ops under the kernel emulator against the CPU ops (tests/common/softmax_checks.h).
#include <doctest/doctest.h>

#include "common/cuda_ready.h"
#include "common/softmax_checks.h"

TEST_CASE("emulated CUDA softmax ops match the CPU: f32") {
  if (!cuda_ready()) return;
  softmax_checks::check_all(engine::Dtype::f32);
}

TEST_CASE("emulated CUDA softmax ops match the CPU: f64") {
  if (!cuda_ready()) return;
  softmax_checks::check_all(engine::Dtype::f64);
}
