// ops::attention through cuDNN (AttentionBackend::cudnn_bf16, ops/cuda/attention_cudnn.h) on a real
// GPU: the path must validate itself against the hand-written kernel at first use, and then match the
// CPU op (f32) within bf16 tolerances; calls it does not support must still run the f32 kernel. Skips
// with a message when no GPU is usable.
//
// Tolerances: ops::cuda::kCudnnForwardTolerance / kCudnnBackwardTolerance (max |got − ref| / max |ref|),
// the validation's own, justified in ops/cuda/attention_cudnn.h (bf16 keeps 8 significant bits).
#include <doctest/doctest.h>

#include <algorithm>
#include <utility>

#include "common/attention_checks.h"
#include "common/cuda_ready.h"
#include "ops/attention.h"
#include "ops/cuda/attention_cudnn.h"

namespace {

using attention_checks::Case;
using engine::DType;
using engine::Tensor;

// Sets the attention backend for a scope.
class BackendScope {
 public:
  explicit BackendScope(ops::AttentionBackend backend) { ops::set_attention_backend(backend); }
  ~BackendScope() { ops::set_attention_backend(previous_); }
  BackendScope(const BackendScope&) = delete;
  BackendScope& operator=(const BackendScope&) = delete;

 private:
  ops::AttentionBackend previous_ = ops::attention_backend();
};

// One case in f32 on the CPU and on CUDA (whatever backend is set); returns the relative error of
// the output and the largest one over the gradients of q, k and v.
std::pair<double, double> cuda_vs_cpu(const Case& c, engine::Generator& gen) {
  using attention_checks::random_input;
  const auto q = random_input(c.B, c.H, c.Tq, c.Dk, c.strided, DType::f32, gen);
  const auto k = random_input(c.B, c.H, c.Tk, c.Dk, false, DType::f32, gen);
  const auto v = random_input(c.B, c.H, c.Tk, c.Dv, c.strided, DType::f32, gen);
  const auto [cpu_options, cuda_options] = attention_checks::both_options(c, DType::f32, gen);
  const Tensor seed = Tensor::randn({c.B, c.H, c.Tq, c.Dv}, gen);
  Tensor expected = ops::attention(q.cpu_view(), k.cpu_view(), v.cpu_view(), cpu_options);
  Tensor got = ops::attention(q.cuda_view(), k.cuda_view(), v.cuda_view(), cuda_options);
  expected.backward(seed);
  got.backward(seed.to(attention_checks::kCuda));
  using attention_checks::relative_error;
  const double grads = std::max({relative_error(q.cuda_leaf.grad(), q.cpu_leaf.grad()),
                                 relative_error(k.cuda_leaf.grad(), k.cpu_leaf.grad()),
                                 relative_error(v.cuda_leaf.grad(), v.cpu_leaf.grad())});
  return {relative_error(got, expected), grads};
}

}  // namespace

TEST_CASE("attention through cuDNN validates itself and matches the CPU within bf16 tolerance") {
  if (!cuda_ready()) return;
  const BackendScope scope(ops::AttentionBackend::cudnn_bf16);
  engine::Generator gen(41);
  // Non-causal with Tq ≠ Tk, causal with Tq = Tk, lengths off cuDNN's 64-row tiles, transposed views.
  const std::vector<Case> cases = {
      {2, 4, 100, 130, 64, 64},
      {2, 3, 150, 150, 64, 64, true},
      {1, 2, 77, 77, 32, 32, true, false, false, true},
      {3, 2, 45, 200, 128, 128, false, false, false, false, 0.2},
  };
  for (const Case& c : cases) {
    CAPTURE(attention_checks::case_name(c));
    const auto [forward, backward] = cuda_vs_cpu(c, gen);
    CHECK(forward < ops::cuda::kCudnnForwardTolerance);
    CHECK(backward < ops::cuda::kCudnnBackwardTolerance);
    // The f32 kernel agrees with the CPU within 1e-5; bf16 rounding of the inputs alone errs by
    // ~1e-3, so a larger error is the evidence that cuDNN ran.
    CHECK(forward > 1e-5);
  }
  const ops::cuda::CudnnAttentionStatus status = ops::cuda::cudnn_attention_status();
  CAPTURE(status.reason);
  CHECK(status.state == ops::cuda::CudnnAttentionState::validated);
  CHECK(status.forward_error >= 0.0);
  CHECK(status.forward_error < ops::cuda::kCudnnForwardTolerance);
  CHECK(status.backward_error >= 0.0);
  CHECK(status.backward_error < ops::cuda::kCudnnBackwardTolerance);
}

TEST_CASE("attention with the cuDNN backend set runs the f32 kernel where cuDNN does not apply") {
  if (!cuda_ready()) return;
  const BackendScope scope(ops::AttentionBackend::cudnn_bf16);
  engine::Generator gen(42);
  // ALiBi, a key mask, Dk ≠ Dv, causal with Tq ≠ Tk, a head size not a multiple of 8: all f32-exact.
  const std::vector<Case> cases = {
      {2, 2, 40, 40, 16, 16, true, true},
      {2, 2, 30, 50, 16, 16, false, false, true},
      {1, 2, 20, 33, 16, 24},
      {1, 2, 20, 33, 16, 16, true},
      {1, 2, 21, 21, 12, 12},
  };
  for (const Case& c : cases) {
    CAPTURE(attention_checks::case_name(c));
    const auto [forward, backward] = cuda_vs_cpu(c, gen);
    CHECK(forward < 1e-5);
    CHECK(backward < 1e-5);
  }
  // Dropout draws our Philox mask, which cuDNN cannot: the kernel runs.
  attention_checks::check_case({2, 2, 40, 40, 16, 16, true, false, false, false, 0.0, 0.1}, DType::f32, gen, 1e-5);
  // f64 never goes through cuDNN.
  attention_checks::check_case({2, 2, 37, 37, 16, 16, true}, DType::f64, gen, 1e-12);
}
