// CPU kernels of tiled (FlashAttention-style) scaled dot-product attention, forward and backward.
// Raw pointers to contiguous row-major buffers; the kernels know nothing of tensors or autograd.
//
//   B = batch, H = heads, Tq / Tk = query / key lengths, Dk = query/key head size, Dv = value head size
//
// Gradient convention: dq, dk and dv are written (=), not accumulated.
#pragma once

#include <cstdint>

#include "engine/philox.h"

namespace ops::cpu {

struct AttentionSizes {
  int64_t batch = 0, heads = 0, query_len = 0, key_len = 0, qk_dim = 0, value_dim = 0;
};

// Dropout on the attention probabilities (GPT-2's attn_pdrop): out = (P ⊙ M / (1 − p)) · v with
// P = softmax(scores) and M a 0/1 mask drawn from Philox at (seed, offset).
struct AttentionDropout {
  double p = 0.0;  // 0: no dropout, and the kernels run exactly as without it
  uint64_t seed = 0, offset = 0;
};

// The mask element M of probability (b, h, i, j), given its flat index ((b·H + h)·Tq + i)·Tk + j:
// kept when that element's Philox uniform at (seed, offset) is below 1 − p. This is the mask
// ops::dropout draws for a (B, H, Tq, Tk) tensor from the same generator state, and a pure function
// of the index, so the backward (and a test) regenerates it anywhere without storing it.
ENGINE_HOST_DEVICE inline bool attention_dropout_keeps(const AttentionDropout& dropout, uint64_t element) {
  return engine::philox_uniform(dropout.seed, dropout.offset, element) < 1.0 - dropout.p;
}

// The factor M / (1 − p) by which a kept probability is scaled (0 when p = 1: everything is dropped).
ENGINE_HOST_DEVICE inline double attention_dropout_scale(const AttentionDropout& dropout) {
  return dropout.p < 1.0 ? 1.0 / (1.0 - dropout.p) : 0.0;
}

// What is added to or masks the scores scale · q_i·k_j, the dropout on the probabilities, and the
// precision of the tile products. Query i sits at absolute position i + (Tk − Tq).
struct AttentionBias {
  double scale = 1.0;
  bool causal = false;                  // mask keys j > i + (Tk − Tq)
  const double* alibi_slopes = nullptr;  // (H): adds slope_h · (j − (i + Tk − Tq)); null for none
  const int32_t* key_keep = nullptr;     // (B, Tk): 0 masks key j of batch b for every query; null for none
  AttentionDropout dropout;
  // An additive bias of the scores, of the inputs' dtype: (P, Hb, Tq, Tk) dense, added after the
  // scale (SeqPE's attn_scalar term, the same for every sequence of a position block). Sequence b
  // reads block b mod P; head h reads its own plane when Hb = H (per_head), plane 0 when Hb = 1. Null
  // for none.
  const void* score_bias = nullptr;
  int64_t score_bias_blocks = 0;  // P, a divisor of B
  bool score_bias_per_head = false;
  // Backward only: (P, H, Tq, Tk) dense, zero on entry; the kernels add dL/ds_ij of every sequence of
  // block p, in sequence order on one thread (deterministic). Null when the bias needs no gradient.
  void* score_bias_grad = nullptr;
  // f32 on the CPU (ignored otherwise): the tile products on ops::cpu::gemm_bf16, operands rounded to
  // bf16 and products summed in f32 (ops/precision.h's bf16); the softmax, its statistics and the
  // score bias stay f32. Set by the op when the precision is bf16 (attention_bf16.h).
  bool bf16_products = false;
};

// How the backward splits its work: items (block, head), each running its sequences b = block,
// block + P, ... in order; P = B (one sequence per item) unless the score bias needs a gradient.
inline int64_t sequence_blocks(const AttentionSizes& sizes, const AttentionBias& bias) {
  return bias.score_bias_grad ? bias.score_bias_blocks : sizes.batch;
}

// Where the rows of a (B, H, T, D) operand sit: element (b, h, t, d) at b·batch + h·head + t·row + d,
// d contiguous. So the kernels read q, k, v as views of a linear layer's (B, T, 3·H·D) output and
// write their results in the (B, T, H, D) order the next linear layer reads, without copies.
struct RowLayout {
  int64_t batch = 0, head = 0, row = 0;
};
// (B, H, T, D) row-major.
inline RowLayout dense_rows(int64_t heads, int64_t length, int64_t width) {
  return {heads * length * width, length * width, width};
}
// One layout per operand; dq, dk, dv and dout may differ from q, k, v and out.
struct AttentionLayouts {
  RowLayout q, k, v, out, dout, dq, dk, dv;
};
// Every operand (B, H, T, D) row-major.
inline AttentionLayouts dense_layouts(const AttentionSizes& s) {
  const RowLayout q = dense_rows(s.heads, s.query_len, s.qk_dim), k = dense_rows(s.heads, s.key_len, s.qk_dim);
  const RowLayout v = dense_rows(s.heads, s.key_len, s.value_dim), out = dense_rows(s.heads, s.query_len, s.value_dim);
  return {q, k, v, out, out, q, k, v};
}

// out = softmax(scores) · v (with the probabilities dropped and rescaled when bias.dropout.p > 0),
// and the log-sum-exp of each row's scores (−inf for a row that sees no key, whose output is zeros).
// q: (B, H, Tq, Dk), k: (B, H, Tk, Dk), v: (B, H, Tk, Dv) -> out: (B, H, Tq, Dv), lse: (B, H, Tq),
// each laid out as `layouts` says (lse dense).
template <typename T>
void attention_forward(T* out, T* lse, const T* q, const T* k, const T* v, const AttentionSizes& sizes,
                       const AttentionBias& bias, const AttentionLayouts& layouts);

// Gradients of attention_forward from the output gradient dout (B, H, Tq, Dv), recomputing the
// probabilities tile by tile from q, k and the saved lse, and the dropout mask from its (seed,
// offset). `out` is the forward's output. In the Eigen kernels (f64; f32 without AVX-512) the score
// gradients of every tile pair, when they fit in `kept_score_grad_bytes`, are kept from the pass that
// sums dK, dV for the pass that sums dQ (B·H·(Tq/64)·(Tk/64) tiles of 64 × 64: 16 MiB for B·H = 64
// at T = 256); otherwise that pass recomputes them, and memory stays linear in the sequence length.
// The f32 AVX-512 and bf16-product kernels (attention_avx512.h, attention_bf16.h) need one pass and
// ignore it.
// dq: (B, H, Tq, Dk), dk: (B, H, Tk, Dk), dv: (B, H, Tk, Dv)
inline constexpr int64_t kKeptScoreGradBytes = int64_t(32) << 20;
template <typename T>
void attention_backward(T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v, const T* out,
                        const T* lse, const AttentionSizes& sizes, const AttentionBias& bias,
                        const AttentionLayouts& layouts, int64_t kept_score_grad_bytes = kKeptScoreGradBytes);

}  // namespace ops::cpu
