// The f32 <-> bf16 conversion kernels (cuDNN attention path) under the kernel emulator
// (tests/common/bfloat16_checks.h).
#include <doctest/doctest.h>

#include "common/bfloat16_checks.h"
#include "common/cuda_ready.h"

TEST_CASE("f32 <-> bf16 conversion on CUDA rounds to nearest even") {
  if (!cuda_ready()) return;
  engine::Generator gen(31);
  bfloat16_checks::check_conversions(gen);
}
