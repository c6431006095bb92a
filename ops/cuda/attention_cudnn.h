// The cuDNN fast path of ops::attention on f32 CUDA tensors: fused flash attention through the
// cuDNN 9 graph (backend descriptor) API. cuDNN's fused attention reads and writes only fp16/bf16,
// so q, k, v (and dout, out) are rounded to bf16 and the results widened back to f32: it changes
// the numerics (about 3 significant digits), hence opt-in (ops::set_attention_backend or
// ENGINE_ATTENTION_CUDNN=1). Built into `ops_cuda` only (ENGINE_CUDA; not under the emulator).
//
//   B = batch, H = heads, Tq / Tk = query / key lengths, D = head size (Dk = Dv)
//
// At its first call the path validates itself against the hand-written kernel (ops/cuda/attention.h)
// on small causal and non-causal cases, forward and backward. If they disagree, or any cuDNN call
// fails, it disables itself with one warning on stderr and every call returns false: the caller then
// runs the hand-written kernel. A shape that cuDNN finds no engine for returns false for that shape
// only. Gradient convention: dq, dk and dv are written (=).
#pragma once

#include <string>

#include "engine/cuda/cuda_api.h"
#include "ops/cpu/attention.h"

namespace ops::cuda {

using cpu::AttentionBias;
using cpu::AttentionSizes;

enum class CudnnAttentionState {
  unchecked,  // not called yet
  validated,  // agrees with the hand-written kernel; in use
  disabled,   // failed (see reason); the hand-written kernel runs instead
};

struct CudnnAttentionStatus {
  CudnnAttentionState state = CudnnAttentionState::unchecked;
  std::string reason;           // why it is disabled; empty otherwise
  double forward_error = -1.0;  // max |cudnn − kernel| / max |kernel| at validation; −1 if not measured
  double backward_error = -1.0; // the same, largest over dq, dk and dv
};

// Tolerances of the validation (relative to the largest entry): bf16 keeps 8 significant bits, so
// one rounding is 2^-9 ≈ 2e-3 of a value. The forward rounds the probabilities and the output (a
// few such errors); the backward also rounds dout, dS (for dK) and its outputs, and dS = P ⊙ (dP − δ)
// loses digits to cancellation, so it gets more room. A wrong transpose, scale or mask errs by O(1).
inline constexpr double kCudnnForwardTolerance = 2e-2;
inline constexpr double kCudnnBackwardTolerance = 5e-2;

CudnnAttentionStatus cudnn_attention_status();

// Whether the path takes a call of these sizes and options: no ALiBi, no key mask, no dropout (its
// mask would be cuDNN's, not ours), no score bias (docs/seqpe.md says why), Dk = Dv, D a multiple
// of 8 and at most 128 (cuDNN's limits for the backward on sm_80), and causal only when Tq = Tk (our
// causal mask is aligned bottom-right, cuDNN's plain one top-left; they agree there).
bool cudnn_attention_supports(const AttentionSizes& sizes, const AttentionBias& bias);

// out = softmax(scale · q·kᵀ [causal]) · v and lse (natural log-sum-exp of each row's scores).
// Returns false, having written nothing the caller may use, when the kernel must run instead.
// q: (B, H, Tq, D), k, v: (B, H, Tk, D) -> out: (B, H, Tq, D), lse: (B, H, Tq); device pointers.
bool cudnn_attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                             const AttentionSizes& sizes, const AttentionBias& bias, cudaStream_t stream);

// Gradients of cudnn_attention_forward (whose out and lse it takes) from dout (B, H, Tq, D).
// Returns false when the kernel must run instead.
// dq: (B, H, Tq, D), dk, dv: (B, H, Tk, D)
bool cudnn_attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                              const float* v, const float* out, const float* lse, const AttentionSizes& sizes,
                              const AttentionBias& bias, cudaStream_t stream);

}  // namespace ops::cuda
