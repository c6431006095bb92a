// ops::attention on non-finite input, on the CPU: NaN propagates as IEEE arithmetic has it (a row
// that sees a NaN key is NaN, not zeros), through the few-keys kernel and the tiled ones, f32 and f64
// (tests/common/attention_checks.h; the same check runs on CUDA in test_ops_emu).
#include <doctest/doctest.h>

#include "common/attention_checks.h"
#include "engine/rng.h"

TEST_CASE("attention propagates NaN: a NaN key makes exactly the rows that see it NaN (CPU)") {
  engine::Generator gen(9);
  for (engine::Dtype dtype : {engine::Dtype::f32, engine::Dtype::f64})
    for (int64_t T : {10, 100, 400}) attention_checks::check_nan_propagates(dtype, engine::Device::cpu(), T, gen);
}
