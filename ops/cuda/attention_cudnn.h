// The cuDNN path of ops::attention on f32 CUDA tensors: fused flash attention (SDPA) through the
// cuDNN 9 backend graph API, the default on GPUs when the precision is bf16 (ops/attention.h says
// how it is chosen, and what happens when it cannot run). cuDNN's fused attention reads and writes
// only fp16/bf16, so q, k, v (and dout, out) are rounded to bf16 and the results widened back to f32:
// about 3 significant digits. Built into `ops_cuda` against the real cuDNN and into `ops_cuda_emu`
// against the emulator's backend subset (engine/emu/cudnn_api.h), which recognises the same graphs
// and evaluates them on the host, so everything but cuDNN's kernels runs in CI.
//
//   B = batch, H = heads, Tq / Tk = query / key lengths, D = head size (Dk = Dv)
//
// Layouts: q, k, v are read where they lie, by strides (views of the fused (B, T, 3·H·D) qkv
// projection read straight, no permute copies): only their head rows must be contiguous. The
// results are written in the layouts the caller allocated (out, dq, dk, dv as (B, H, T, D) views of
// (B, T, H, D) buffers: what the output projection and the qkv split's backward read).
//
// At its first call the path validates itself against the hand-written kernel (ops/cuda/attention.h)
// on small causal, causal-ALiBi and non-causal cases, forward and backward. If they disagree, or a
// cuDNN call fails, every later call throws with the reason; a shape cuDNN finds no plan for throws
// for that shape. The caller (ops/attention.cpp) decides whether that stops the run. The backward
// uses only engines cuDNN does not mark non-deterministic, so it gives bitwise-equal gradients run to
// run. Gradient convention: dq, dk and dv are written (=).
#pragma once

#include <string>

// engine/tensor.h before the CUDA header, whose emulated form defines CUDA's keywords as macros.
#include "engine/tensor.h"
#include "ops/cpu/attention.h"

#include "engine/cuda/cuda_api.h"

namespace ops::cuda {

using cpu::AttentionBias;
using cpu::AttentionSizes;
using engine::Tensor;

enum class CudnnAttentionState {
  unchecked,  // not called yet
  validated,  // agrees with the hand-written kernel; in use
  disabled,   // failed validation or a cuDNN call (see reason): every call throws
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

// Why the cuDNN graph cannot express a call of these sizes and options, "" when it can. Not
// expressible (the hand-written kernel runs them; not a refusal): key masks, dropout (our Philox
// mask, not cuDNN's), a score bias, Dk ≠ Dv (SeqPE's widened q·k), ALiBi other than with a causal
// mask over Tq = Tk (cuDNN's ALiBi needs the causal mask; its bottom-right mask takes no ALiBi),
// causal with Tq > Tk (rows with no key), and D not a multiple of 8 or above 128.
std::string cudnn_attention_unsupported(const AttentionSizes& sizes, const AttentionBias& bias);

// out = softmax(scale · q·kᵀ [+ ALiBi] [causal]) · v and lse (natural log-sum-exp of each row's
// scores), through cuDNN. Throws engine::Error naming the cause when cuDNN cannot run it.
// q: (B, H, Tq, D), k, v: (B, H, Tk, D), f32 device views with unit stride on D
// -> out: (B, H, Tq, D), a view of a dense buffer, lse: (B, H, Tq) dense;
// alibi_slopes: (H) f32 on the device (ALiBi calls only, else undefined)
void cudnn_attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                             const Tensor& alibi_slopes, const AttentionSizes& sizes, const AttentionBias& bias,
                             cudaStream_t stream);

// Gradients of cudnn_attention_forward (whose out and lse it takes) from dout (B, H, Tq, D), any
// strides with a unit stride on D. Throws engine::Error naming the cause when cuDNN cannot run it.
// dq: (B, H, Tq, D), dk, dv: (B, H, Tk, D), views of dense buffers
void cudnn_attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout,
                              const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                              const Tensor& alibi_slopes, const AttentionSizes& sizes, const AttentionBias& bias,
                              cudaStream_t stream);

}  // namespace ops::cuda
