// One test body for ops::attention through cuDNN (ops/cuda/attention_cudnn.h), run by test_ops_emu
// (the emulator's cuDNN backend subset: our graphs, strides, layouts and policy, with cuDNN's kernels
// replaced by a host evaluation of the graph) and test_ops_gpu (a real GPU: cuDNN's own engines).
// The CUDA op against the CPU op (f32) on fresh random inputs, forward and gradients of q, k, v.
//
//   B = batch, H = heads, Tq / Tk = query / key lengths, D = head size
//
// Tolerances: ops::cuda::kCudnnForwardTolerance (2e-2) / kCudnnBackwardTolerance (5e-2) on
// max |got − ref| / max |ref|, the first-use validation's own, justified in
// ops/cuda/attention_cudnn.h (bf16 keeps 8 significant bits, one rounding errs by 2^-9 ≈ 2e-3 of a
// value, and the graph rounds q, k, v, P, O, dO, dS and the results). Calls cuDNN cannot express run
// the f32 kernel: 1e-5, as tests/common/attention_checks.h.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "common/attention_checks.h"
#include "engine/error.h"
#include "ops/attention.h"
#include "ops/cuda/attention_cudnn.h"
#include "ops/indexing.h"
#include "ops/precision.h"

namespace attention_cudnn_checks {

using attention_checks::Case;
using attention_checks::kCuda;
using attention_checks::relative_error;
using engine::Dtype;
using engine::Tensor;

// Sets the attention backend and fallback for a scope, then restores them.
class AttentionScope {
 public:
  AttentionScope(ops::AttentionBackend backend, bool fallback) {
    ops::set_attention_backend(backend);
    ops::set_attention_fallback(fallback);
  }
  ~AttentionScope() {
    ops::set_attention_backend(backend_);
    ops::set_attention_fallback(fallback_);
  }
  AttentionScope(const AttentionScope&) = delete;
  AttentionScope& operator=(const AttentionScope&) = delete;

 private:
  ops::AttentionBackend backend_ = ops::attention_backend();
  bool fallback_ = ops::attention_fallback();
};

// One case in f32 on the CPU (f32 products) and on CUDA (whatever backend is set); returns the
// relative error of the output and the largest one over the gradients of q, k and v.
inline std::pair<double, double> cuda_vs_cpu(const Case& c, engine::Generator& gen) {
  using attention_checks::random_input;
  const auto q = random_input(c.B, c.H, c.Tq, c.Dk, c.strided, Dtype::f32, gen);
  const auto k = random_input(c.B, c.H, c.Tk, c.Dk, false, Dtype::f32, gen);
  const auto v = random_input(c.B, c.H, c.Tk, c.Dv, c.strided, Dtype::f32, gen);
  auto [cpu_options, cuda_options] = attention_checks::both_options(c, Dtype::f32, gen);
  engine::Generator cpu_dropout(gen.seed() + 1), cuda_dropout(gen.seed() + 1);
  cpu_options.dropout_p = cuda_options.dropout_p = c.dropout;
  cpu_options.dropout_gen = &cpu_dropout;
  cuda_options.dropout_gen = &cuda_dropout;
  const Tensor seed = Tensor::randn({c.B, c.H, c.Tq, c.Dv}, gen);
  Tensor expected;
  {
    const ops::PrecisionScope f32_reference(ops::Precision::fp32);
    expected = ops::attention(q.cpu_view(), k.cpu_view(), v.cpu_view(), cpu_options);
    expected.backward(seed);
  }
  Tensor got = ops::attention(q.cuda_view(), k.cuda_view(), v.cuda_view(), cuda_options);
  got.backward(seed.to(kCuda));
  const double grads = std::max({relative_error(q.cuda_leaf.grad(), q.cpu_leaf.grad()),
                                 relative_error(k.cuda_leaf.grad(), k.cpu_leaf.grad()),
                                 relative_error(v.cuda_leaf.grad(), v.cpu_leaf.grad())});
  return {relative_error(got, expected), grads};
}

// The transformer's layout: q, k, v are (B, H, T, D) views of one (B, T, 3·H·D) projection, split
// and permuted as models/transformer_block.cpp does, read by strides; the output goes on to
// (B, T, H·D) as the output projection reads it. Returns the relative errors of the output and of
// the gradient of the fused projection.
inline std::pair<double, double> fused_qkv_vs_cpu(int64_t B, int64_t H, int64_t T, int64_t D, bool causal,
                                                  engine::Generator& gen) {
  const int64_t C = H * D;
  const Tensor values = Tensor::randn({B, T, 3 * C}, gen);
  auto run = [&](const Tensor& qkv, const Tensor& seed) {
    std::vector<Tensor> parts = ops::split(qkv, {C, C, C}, 2);
    for (Tensor& part : parts) part = part.view({B, T, H, D}).permute({0, 2, 1, 3});
    ops::AttentionOptions options;
    options.causal = causal;
    Tensor y = ops::attention(parts[0], parts[1], parts[2], options).permute({0, 2, 1, 3}).reshape({B, T, C});
    y.backward(seed);
    return y;
  };
  const Tensor seed = Tensor::randn({B, T, C}, gen);
  const Tensor cpu_qkv = values.clone().requires_grad_(), cuda_qkv = values.to(kCuda).requires_grad_();
  Tensor expected;
  {
    const ops::PrecisionScope f32_reference(ops::Precision::fp32);
    expected = run(cpu_qkv, seed);
  }
  const Tensor got = run(cuda_qkv, seed.to(kCuda));
  return {relative_error(got, expected), relative_error(cuda_qkv.grad(), cpu_qkv.grad())};
}

// Cases cuDNN expresses: non-causal with Tq ≠ Tk, causal with Tq = Tk (top-left = our alignment)
// and Tq < Tk (bottom-right), causal ALiBi, lengths off cuDNN's 64-row tiles, transposed views.
inline std::vector<Case> expressible_cases() {
  return {
      {2, 4, 45, 70, 64, 64},
      {2, 3, 50, 50, 32, 32, true},
      {1, 2, 37, 37, 16, 16, true, false, false, true},
      {1, 2, 20, 33, 16, 16, true},
      {2, 2, 40, 40, 16, 16, true, true},
      {3, 2, 25, 60, 128, 128, false, false, false, false, 0.2},
  };
}

// Cases the kernel runs because cuDNN's graph cannot express them; f32-exact against the CPU.
inline std::vector<Case> inexpressible_cases() {
  return {
      {2, 2, 30, 30, 16, 16, false, true},                          // ALiBi without a causal mask
      {2, 2, 30, 50, 16, 16, false, false, true},                   // a key mask
      {1, 2, 20, 33, 16, 24},                                       // Dk ≠ Dv
      {1, 2, 21, 21, 12, 12},                                       // D not a multiple of 8
      {1, 2, 40, 20, 16, 16, true},                                 // causal with Tq > Tk
      {2, 2, 24, 24, 16, 16, true, false, false, false, 0.0, 0.1},  // dropout
      {2, 2, 24, 24, 16, 16, false, false, false, false, 0.0, 0.0, 2},  // a score bias
  };
}

inline void check_expressible_cases_match_cpu(ops::AttentionBackend backend, engine::Generator& gen) {
  const AttentionScope scope(backend, false);
  for (const Case& c : expressible_cases()) {
    CAPTURE(attention_checks::case_name(c));
    const auto [forward, backward] = cuda_vs_cpu(c, gen);
    MESSAGE(attention_checks::case_name(c) << ": relative error forward " << forward << ", gradients " << backward);
    CHECK(forward < ops::cuda::kCudnnForwardTolerance);
    CHECK(backward < ops::cuda::kCudnnBackwardTolerance);
    // The f32 kernel agrees with the CPU within 1e-5; bf16 rounding of the inputs alone errs by
    // ~1e-3, so a larger error is the evidence that cuDNN ran.
    CHECK(forward > 1e-5);
  }
  for (const bool causal : {false, true}) {
    CAPTURE(causal);
    const auto [forward, backward] = fused_qkv_vs_cpu(2, 3, 41, 16, causal, gen);
    const std::string name = causal ? "fused qkv B=2 H=3 T=41 D=16 causal" : "fused qkv B=2 H=3 T=41 D=16";
    MESSAGE(name << ": relative error forward " << forward << ", gradient of qkv " << backward);
    CHECK(forward < ops::cuda::kCudnnForwardTolerance);
    CHECK(forward > 1e-5);
    CHECK(backward < ops::cuda::kCudnnBackwardTolerance);
  }
  const ops::cuda::CudnnAttentionStatus status = ops::cuda::cudnn_attention_status();
  CAPTURE(status.reason);
  CHECK(status.state == ops::cuda::CudnnAttentionState::validated);
  MESSAGE("first-use validation against the kernel: forward " << status.forward_error << ", backward "
                                                              << status.backward_error);
  CHECK(status.forward_error >= 0.0);
  CHECK(status.forward_error < ops::cuda::kCudnnForwardTolerance);
  CHECK(status.backward_error >= 0.0);
  CHECK(status.backward_error < ops::cuda::kCudnnBackwardTolerance);
}

inline void check_inexpressible_cases_run_the_kernel(engine::Generator& gen) {
  const AttentionScope scope(ops::AttentionBackend::cudnn_bf16, false);
  for (const Case& c : inexpressible_cases()) {
    CAPTURE(attention_checks::case_name(c));
    const auto [forward, backward] = cuda_vs_cpu(c, gen);
    CHECK(forward < 1e-5);
    CHECK(backward < 1e-5);
  }
  // f64 never goes through cuDNN.
  attention_checks::check_case({2, 2, 37, 37, 16, 16, true}, Dtype::f64, gen, 1e-12);
}

// The backward picks deterministic engines: two backward passes give bitwise-equal gradients.
inline void check_backward_is_deterministic(engine::Generator& gen) {
  const AttentionScope scope(ops::AttentionBackend::cudnn_bf16, false);
  const Tensor q0 = Tensor::randn({2, 3, 70, 64}, gen).to(kCuda), k0 = Tensor::randn({2, 3, 70, 64}, gen).to(kCuda),
               v0 = Tensor::randn({2, 3, 70, 64}, gen).to(kCuda), seed = Tensor::randn({2, 3, 70, 64}, gen).to(kCuda);
  std::vector<std::vector<float>> grads[2];
  for (auto& run : grads) {
    const Tensor q = q0.clone().requires_grad_(), k = k0.clone().requires_grad_(), v = v0.clone().requires_grad_();
    ops::AttentionOptions options;
    options.causal = true;
    ops::attention(q, k, v, options).backward(seed);
    for (const Tensor* g : {&q, &k, &v}) run.push_back(g->grad().to(engine::Device::cpu()).to_vector<float>());
  }
  CHECK(grads[0] == grads[1]);
}

// The default: cuDNN with --precision bf16, the kernel with fp32 (the f32 kernel is exact to 1e-5).
inline void check_cudnn_is_the_bf16_default(engine::Generator& gen) {
  const AttentionScope scope(ops::AttentionBackend::automatic, false);
  const Case c{2, 2, 33, 33, 16, 16, true};
  {
    const ops::PrecisionScope bf16(ops::Precision::bf16);
    const auto [forward, backward] = cuda_vs_cpu(c, gen);
    CHECK(forward > 1e-5);
    CHECK(forward < ops::cuda::kCudnnForwardTolerance);
    CHECK(backward < ops::cuda::kCudnnBackwardTolerance);
  }
  const auto [forward, backward] = cuda_vs_cpu(c, gen);
  CHECK(forward < 1e-5);
  CHECK(backward < 1e-5);
  // Opting out with bf16: the kernel.
  const AttentionScope kernel(ops::AttentionBackend::kernel, false);
  const ops::PrecisionScope bf16(ops::Precision::bf16);
  CHECK(cuda_vs_cpu(c, gen).first < 1e-5);
}

}  // namespace attention_cudnn_checks
