// f32 attention with bf16 tile products: what ops/cpu/attention.cpp runs for f32 when
// AttentionBias::bf16_products is set (the op sets it in bf16 precision, ops/precision.h) and there
// are more than kFewKeys keys. Same contract as attention_forward / attention_backward in
// ops/cpu/attention.h (layouts, masks, ALiBi, dropout, score bias and its gradient, lse), same
// algorithm; every tile product (S = Q·Kᵀ, out += P·V; in the backward S again, dP = dO·Vᵀ,
// dV += P̃ᵀ·dO, dK += dSᵀ·Q, dQ += dS·K) runs on ops::cpu::gemm_bf16: operands rounded to bf16
// (nearest even), products summed in f32, on AMX, AVX512-BF16 or the f32 fallback as
// ops/cpu/bf16_kernel.h picks. The scale, masks, score bias, softmax and its statistics (row max,
// sum, lse, δ) stay f32 (the row sum in f64), as in PyTorch's bf16 autocast of attention.
//
//   B = batch, H = heads, Tq / Tk = query / key lengths, Dk = query/key head size, Dv = value head size
#pragma once

#include "ops/cpu/attention.h"

namespace ops::cpu {

// q: (B, H, Tq, Dk), k: (B, H, Tk, Dk), v: (B, H, Tk, Dv) -> out: (B, H, Tq, Dv), lse: (B, H, Tq) dense.
void attention_forward_bf16(float* out, float* lse, const float* q, const float* k, const float* v,
                            const AttentionSizes& sizes, const AttentionBias& bias, const AttentionLayouts& layouts);

// delta: (B, H, Tq) dense, δ_i = Σ_d dO_id · O_id. Writes dq, dk, dv; adds to bias.score_bias_grad.
void attention_backward_bf16(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                             const float* v, const float* lse, const float* delta, const AttentionSizes& sizes,
                             const AttentionBias& bias, const AttentionLayouts& layouts);

}  // namespace ops::cpu
