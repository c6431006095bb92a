// Attention over at most kFewKeys keys (SeqPE's encoder reads 6 tokens; a prompt of a few tokens),
// what ops/cpu/attention.cpp runs for such lengths in every dtype. Same contract as attention_forward
// / attention_backward in ops/cpu/attention.h (layouts, masks, ALiBi, dropout, lse) and the same row
// steps (attention_scores.h); the tiled kernels spend most of their work on such lengths filling and
// skipping padding (a 6-key head took a 96 x 288 tile of scores and two register transposes).
//
//   B = batch, H = heads, Tq / Tk = query / key lengths, Dk = query/key head size, Dv = value head size
#pragma once

#include "ops/cpu/attention.h"

namespace ops::cpu {

inline constexpr int64_t kFewKeys = 16;

// Tk <= kFewKeys. q: (B, H, Tq, Dk), k: (B, H, Tk, Dk), v: (B, H, Tk, Dv) -> out: (B, H, Tq, Dv),
// lse: (B, H, Tq) dense.
template <typename T>
void attention_forward_few_keys(T* out, T* lse, const T* q, const T* k, const T* v, const AttentionSizes& sizes,
                                const AttentionBias& bias, const AttentionLayouts& layouts);

// Tk <= kFewKeys. delta: (B, H, Tq) dense, δ_i = Σ_d dO_id · O_id. Writes dq, dk, dv.
template <typename T>
void attention_backward_few_keys(T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v,
                                 const T* lse, const T* delta, const AttentionSizes& sizes, const AttentionBias& bias,
                                 const AttentionLayouts& layouts);

}  // namespace ops::cpu
