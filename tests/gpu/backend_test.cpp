// The real CUDA backend (engine_cuda). Without a usable GPU every test prints why and passes; with
// one, the primitives are compared with the CPU backend by the same checks the emulator runs.
#include <doctest/doctest.h>

#include <string>

#include "common/backend_checks.h"
#include "common/cuda_ready.h"
#include "engine/cuda/check.h"
#include "engine/cuda/cudnn_check.h"
#include "engine/cuda/init.h"
#include "engine/cuda/nccl_check.h"

TEST_CASE("CUDA init reports a missing GPU clearly") {
  CHECK_FALSE(engine::cuda::is_emulated());
  std::string reason;
  if (engine::cuda::available(&reason)) {
    CHECK_NOTHROW(engine::cuda::init());
  } else {
    CHECK_THROWS_WITH_AS(engine::cuda::init(), doctest::Contains(("CUDA requested but no usable GPU: " + reason).c_str()),
                         engine::Error);
  }
}

TEST_CASE("error-check macros name the call, file and line of each library") {
  CHECK_THROWS_WITH_AS(CUDA_CHECK(cudaErrorInvalidValue), doctest::Contains("backend_test.cpp:"), engine::Error);
  CHECK_THROWS_WITH_AS(CUBLAS_CHECK(CUBLAS_STATUS_INVALID_VALUE), doctest::Contains("CUBLAS_STATUS_INVALID_VALUE"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(CUDNN_CHECK(CUDNN_STATUS_BAD_PARAM), doctest::Contains("cuDNN error at"), engine::Error);
  CHECK_THROWS_WITH_AS(NCCL_CHECK(ncclInvalidArgument), doctest::Contains("NCCL error at"), engine::Error);
}

TEST_CASE("GPU backend: tensors and round trips") {
  if (!cuda_ready()) return;
  engine::Generator gen(7);
  backend_checks::check_round_trip(gen);
}

TEST_CASE("GPU backend: primitives match the CPU backend") {
  if (!cuda_ready()) return;
  engine::Generator gen(11);
  backend_checks::check_fill_and_copy(gen);
  for (engine::Dtype dtype : {engine::Dtype::f32, engine::Dtype::f64}) {
    CAPTURE(engine::dtype_name(dtype));
    backend_checks::check_add_into(gen, dtype);
    backend_checks::check_sum_to(gen, dtype);
  }
  // The GPU's double-precision log/cos/erf may differ from glibc's in the last bit.
  backend_checks::check_fill_random(/*bitwise=*/false);
}
