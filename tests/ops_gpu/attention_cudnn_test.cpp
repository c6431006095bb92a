// ops::attention through cuDNN on a real GPU: the shared body (tests/common/attention_cudnn_checks.h,
// also run under the emulator's cuDNN by test_ops_emu), here against cuDNN's own engines. On the
// first GPU it checks that cuDNN 9 accepts our forward and backward graphs (causal top-left and
// bottom-right, causal ALiBi, non-causal, fused-qkv strides, (B, T, H, D) outputs) and finds a
// deterministic backward engine, that the first-use validation against the hand-written kernel
// passes, that results match the CPU within bf16 tolerance, and that two backward passes are bitwise
// equal. Skips with a message when no GPU is usable.
#include <doctest/doctest.h>

#include "common/attention_cudnn_checks.h"
#include "common/cuda_ready.h"

TEST_CASE("attention through cuDNN validates itself and matches the CPU within bf16 tolerance") {
  if (!cuda_ready()) return;
  engine::Generator gen(41);
  attention_cudnn_checks::check_expressible_cases_match_cpu(ops::AttentionBackend::cudnn_bf16, gen);
}

TEST_CASE("attention with cuDNN asked for runs the f32 kernel where cuDNN's graph cannot express the call") {
  if (!cuda_ready()) return;
  engine::Generator gen(42);
  attention_cudnn_checks::check_inexpressible_cases_run_the_kernel(gen);
}

TEST_CASE("cuDNN attention's backward is deterministic") {
  if (!cuda_ready()) return;
  engine::Generator gen(43);
  attention_cudnn_checks::check_backward_is_deterministic(gen);
}

TEST_CASE("cuDNN attention is the default on CUDA in bf16") {
  if (!cuda_ready()) return;
  engine::Generator gen(44);
  attention_cudnn_checks::check_cudnn_is_the_bf16_default(gen);
}
