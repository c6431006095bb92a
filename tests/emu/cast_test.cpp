// bf16 on the emulated CUDA backend against the CPU (tests/common/cast_checks.h).
#include <doctest/doctest.h>

#include "common/cast_checks.h"
#include "engine/cuda/init.h"

TEST_CASE("emulated CUDA backend: bf16 conversions, fills and the cast's backward match the CPU") {
  engine::cuda::init();
  engine::Generator gen(41);
  cast_checks::check_conversions(gen);
  cast_checks::check_fills();
  cast_checks::check_cast_backward(gen);
}
