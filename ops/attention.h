// Scaled dot-product attention as one op:
//   out = softmax(scale · q·kᵀ + bias) · v
// computed in tiles of keys with an online softmax (Milakov & Gimelshein 2018; FlashAttention), so
// memory grows linearly with sequence length: no (Tq × Tk) matrix is ever stored. The backward
// recomputes the tiles from the saved per-row log-sum-exp. On f32 CPU tensors in bf16 precision
// (ops/precision.h) the tile products take bf16 operands with f32 sums, the softmax staying f32; the
// backward runs in its forward's precision.
//
//   B = batch, H = heads, Tq / Tk = query / key lengths, Dk = query/key head size, Dv = value head size
#pragma once

#include <string>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace ops {

using engine::Tensor;

struct AttentionOptions {
  // Query i sits at absolute position i + (Tk - Tq) (the last Tq of the keys' positions, as with a
  // KV cache); causal masks keys after it.
  bool causal = false;
  // Multiplies q·k; 0 means 1/sqrt(Dk).
  double scale = 0.0;
  // (H): adds slope_h · (j − i) to head h's score of query i for key j, in absolute positions
  // (ALiBi). Undefined for none.
  Tensor alibi_slopes;
  // (B, Tk), any dtype: zero marks a key that no query may attend to (padding). Undefined for none.
  Tensor key_mask;
  // Dropout on the attention probabilities (GPT-2's attn_pdrop), for training: out = (P ⊙ M / (1 − p))·v.
  // The mask is the one ops::dropout would draw from `dropout_gen` for a (B, H, Tq, Tk) tensor; the
  // op reserves its counters (advancing the generator) but never stores it: the backward regenerates
  // it tile by tile. 0 (evaluation) runs exactly the op without dropout and needs no generator.
  double dropout_p = 0.0;
  engine::Generator* dropout_gen = nullptr;
  // (P, Hb, Tq, Tk), the inputs' dtype and device, Hb = 1 or H, P a divisor of B: added to the scaled
  // scores, scale · q_i·k_j + score_bias_ij, as an input with a gradient. Sequence b reads block
  // b mod P (SeqPE's position blocks: sequence b of a batch uses block b mod P), every head plane 0
  // when Hb = 1. Its gradient is summed over each block's sequences inside the kernels, so a bias
  // shared by the batch (and, built once, by every layer) costs one (Tq × Tk) plane per block and
  // head, never a (B, H, Tq, Tk) tensor. Undefined for none.
  Tensor score_bias;
};

// q: (B, H, Tq, Dk), k: (B, H, Tk, Dk), v: (B, H, Tk, Dv) -> (B, H, Tq, Dv).
// Dk may differ from Dv: (q_i·k_j + pq_i·pk_j) is attention over [q; pq] and [k; pk].
// A query row with no visible key outputs zeros. A row that sees a NaN score (NaN in q or k) or a +inf
// one (e^(inf − inf)) outputs NaN, as IEEE arithmetic has it.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options = {});

// How attention runs on f32 CUDA tensors (f64 and CPU tensors always run the hand-written kernels).
enum class AttentionBackend {
  automatic,   // cuDNN when the precision is bf16 (ops/precision.h), the kernel otherwise: the default
  kernel,      // the hand-written tiled kernel (ops/cuda/attention.h): f32 throughout
  cudnn_bf16,  // cuDNN's fused attention (ops/cuda/attention_cudnn.h) on inputs rounded to bf16, in any
               // precision (~3 significant digits)
};

// A call that asks for cuDNN (cudnn_bf16, or automatic in bf16) runs through it when cuDNN's graph
// can express it. One it cannot express (a key mask, dropout, a score bias, Dk ≠ Dv as SeqPE's
// attn_scalar widens q·k, ALiBi without a causal mask, a head size cuDNN does not take) runs the
// kernel, and the first call of each such kind says so on stderr: that is a choice, not a failure.
// When cuDNN could express the call but fails (no engine or plan for the graph, a cuDNN error, a
// first-use validation against the kernel that disagrees), the call throws engine::Error saying why
// and how to go on, unless the fallback is allowed: then the kernel runs and the first fallback of
// each reason is said on stderr. Builds without CUDA kernels have no cuDNN either.

// The process-wide choice; ENGINE_ATTENTION_CUDNN=1 sets cudnn_bf16, =0 kernel; automatic otherwise.
void set_attention_backend(AttentionBackend backend);
AttentionBackend attention_backend();
// "auto", "kernel" or "cudnn", as --attention spells them; the error names `option`.
AttentionBackend parse_attention_backend(const std::string& text, const std::string& option = "--attention");
const char* attention_backend_name(AttentionBackend backend);
// Whether attention on f32 CUDA tensors asks for cuDNN now: cudnn_bf16, or automatic in bf16.
bool cudnn_attention_requested();

// Whether a call that asked for cuDNN and did not get it may run the kernel instead of stopping the
// run (--attention-fallback); false unless set or ENGINE_ATTENTION_FALLBACK=1.
void set_attention_fallback(bool allowed);
bool attention_fallback();

}  // namespace ops
