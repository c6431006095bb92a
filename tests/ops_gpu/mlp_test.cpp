// The fused MLP op on a real GPU (cuBLASLt) against the CPU op; skips without a GPU.
#include <doctest/doctest.h>

#include "common/cuda_ready.h"
#include "common/mlp_checks.h"

TEST_CASE("mlp on the GPU matches the CPU") {
  if (!cuda_ready()) return;
  engine::Generator gen(43);
  for (engine::Dtype dtype : {engine::Dtype::f32, engine::Dtype::f64}) {
    CAPTURE(engine::dtype_name(dtype));
    mlp_checks::check_mlp(gen, dtype);
  }
  mlp_checks::check_bf16_products(gen);
}
