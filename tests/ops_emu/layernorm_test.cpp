// layer_norm and residual_layer_norm on the emulated CUDA backend against the CPU op.
#include <doctest/doctest.h>

#include "common/cuda_ready.h"
#include "common/layernorm_checks.h"

TEST_CASE("layer_norm and residual_layer_norm on emulated CUDA match the CPU") {
  if (!cuda_ready()) return;
  engine::Generator gen(43);
  for (engine::Dtype dtype : {engine::Dtype::f32, engine::Dtype::f64}) {
    CAPTURE(engine::dtype_name(dtype));
    layernorm_checks::check_layer_norm(gen, dtype);
    layernorm_checks::check_residual_layer_norm(gen, dtype);
  }
}
