// bf16 on a real GPU against the CPU (tests/common/cast_checks.h); skipped without a GPU.
#include <doctest/doctest.h>

#include "common/cast_checks.h"
#include "common/cuda_ready.h"

TEST_CASE("CUDA backend: bf16 conversions, fills and the cast's backward match the CPU") {
  if (!cuda_ready()) return;
  engine::Generator gen(41);
  cast_checks::check_conversions(gen);
  cast_checks::check_fills();
  cast_checks::check_cast_backward(gen);
}
