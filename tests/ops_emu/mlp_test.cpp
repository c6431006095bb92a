// The fused MLP op on the emulated CUDA backend (cuBLASLt emulated) against the CPU op.
#include <doctest/doctest.h>

#include "common/cuda_ready.h"
#include "common/mlp_checks.h"

TEST_CASE("mlp on emulated CUDA matches the CPU") {
  if (!cuda_ready()) return;
  engine::Generator gen(43);
  for (engine::Dtype dtype : {engine::Dtype::f32, engine::Dtype::f64}) {
    CAPTURE(engine::dtype_name(dtype));
    mlp_checks::check_mlp(gen, dtype);
  }
  mlp_checks::check_bf16_products(gen);
}
