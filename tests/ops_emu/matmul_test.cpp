// matmul and linear on the emulated CUDA backend (cuBLASLt emulated) against the CPU op.
#include <doctest/doctest.h>

#include "common/cuda_ready.h"
#include "common/grad_in_place_checks.h"
#include "common/matmul_checks.h"

TEST_CASE("matmul and linear on emulated CUDA match the CPU") {
  if (!cuda_ready()) return;
  engine::Generator gen(41);
  for (engine::Dtype dtype : {engine::Dtype::f32, engine::Dtype::f64}) {
    CAPTURE(engine::dtype_name(dtype));
    matmul_checks::check_matmul(gen, dtype);
    matmul_checks::check_linear(gen, dtype);
    matmul_checks::check_gemm_epilogues(gen, dtype);
  }
  matmul_checks::check_bf16_products(gen);
  matmul_checks::check_tf32_switch(gen);
}

TEST_CASE("linear's weight gradient accumulated in place on emulated CUDA matches the engine's add") {
  if (!cuda_ready()) return;
  engine::Generator gen(43);
  for (engine::Dtype dtype : {engine::Dtype::f32, engine::Dtype::f64}) {
    CAPTURE(engine::dtype_name(dtype));
    grad_in_place_checks::check_linear_weight_gradient_in_place(gen, engine::Device::cuda(), dtype);
  }
}
