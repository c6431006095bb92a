// f32 attention on the AVX-512 GEMM micro-kernel (ops/cpu/sgemm_avx512_kernels.h): what
// ops/cpu/attention.cpp runs for f32 where the build targets AVX-512. Same contract as
// attention_forward / attention_backward in ops/cpu/attention.h (layouts, masks, ALiBi, dropout, lse),
// same algorithm (FlashAttention's online-softmax forward; a backward that recomputes P tile by
// tile), different work split: ops/cpu/attention_avx512.cpp says how.
//
//   B = batch, H = heads, Tq / Tk = query / key lengths, Dk = query/key head size, Dv = value head size
#pragma once

#include "ops/cpu/attention.h"

namespace ops::cpu {

#ifdef __AVX512F__
inline constexpr bool have_attention_avx512 = true;

// q: (B, H, Tq, Dk), k: (B, H, Tk, Dk), v: (B, H, Tk, Dv) -> out: (B, H, Tq, Dv), lse: (B, H, Tq) dense.
void attention_forward_avx512(float* out, float* lse, const float* q, const float* k, const float* v,
                              const AttentionSizes& sizes, const AttentionBias& bias, const AttentionLayouts& layouts);

// delta: (B, H, Tq) dense, δ_i = Σ_d dO_id · O_id. Writes dq, dk, dv.
void attention_backward_avx512(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                               const float* v, const float* lse, const float* delta, const AttentionSizes& sizes,
                               const AttentionBias& bias, const AttentionLayouts& layouts);
#else
inline constexpr bool have_attention_avx512 = false;
#endif

}  // namespace ops::cpu
