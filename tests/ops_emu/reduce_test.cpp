// CUDA reduce ops under the kernel emulator against the CPU ops (tests/common/reduce_checks.h).
#include <doctest/doctest.h>

#include "common/cuda_ready.h"
#include "common/reduce_checks.h"

TEST_CASE("emulated CUDA reduce ops match the CPU: f32") {
  if (!cuda_ready()) return;
  reduce_checks::check_all(engine::Dtype::f32);
}

TEST_CASE("emulated CUDA reduce ops match the CPU: f64") {
  if (!cuda_ready()) return;
  reduce_checks::check_all(engine::Dtype::f64);
}
