// The attention backend switch under the kernel emulator, which has no cuDNN: the cuDNN path says it
// is not available, asking for cuDNN is accepted and the f32 kernel still runs, exact to 1e-5
// against the CPU (tests/common/attention_checks.h).
#include <doctest/doctest.h>

#include <string>

#include "common/attention_checks.h"
#include "common/cuda_ready.h"
#include "ops/attention.h"
#include "ops/cuda/attention_cudnn.h"

TEST_CASE("attention with the cuDNN backend set runs the kernel where cuDNN is not built") {
  if (!cuda_ready()) return;
  const ops::cuda::CudnnAttentionStatus status = ops::cuda::cudnn_attention_status();
  CHECK(status.state == ops::cuda::CudnnAttentionState::disabled);
  CHECK(status.reason.find("cuDNN not available") != std::string::npos);
  const ops::AttentionBackend previous = ops::attention_backend();
  ops::set_attention_backend(ops::AttentionBackend::cudnn_bf16);
  CHECK(ops::attention_backend() == ops::AttentionBackend::cudnn_bf16);
  engine::Generator gen(14);
  attention_checks::check_case({2, 2, 37, 37, 16, 16, true}, engine::DType::f32, gen, 1e-5);
  attention_checks::check_case({1, 3, 20, 45, 32, 32}, engine::DType::f32, gen, 1e-5);
  ops::set_attention_backend(previous);
  CHECK(ops::attention_backend() == previous);
}
