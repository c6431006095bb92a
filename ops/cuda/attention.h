// CUDA kernels of tiled (FlashAttention-style) scaled dot-product attention, forward and backward:
// the same algorithm as the CPU kernels (ops/cpu/attention.h), on raw device pointers to contiguous
// row-major buffers. The kernels know nothing of tensors or autograd.
//
//   B = batch, H = heads, Tq / Tk = query / key lengths, Dk = query/key head size, Dv = value head size
//
// `bias` is the CPU kernels' AttentionBias, except that alibi_slopes (H, f64), key_keep (B, Tk, i32),
// score_bias and score_bias_grad point to device memory. Gradient convention: dq, dk and dv are
// written (=), not accumulated; the score bias's gradient is accumulated (+=) into zeros.
#pragma once

#include "engine/cuda/cuda_api.h"
#include "ops/cpu/attention.h"

namespace ops::cuda {

using cpu::AttentionBias;
using cpu::AttentionSizes;

// out = softmax(scores) · v and the per-row log-sum-exp (−inf for a row that sees no key; its output
// is zeros).
// q: (B, H, Tq, Dk), k: (B, H, Tk, Dk), v: (B, H, Tk, Dv) -> out: (B, H, Tq, Dv), lse: (B, H, Tq)
template <typename T>
void attention_forward(T* out, T* lse, const T* q, const T* k, const T* v, const AttentionSizes& sizes,
                       const AttentionBias& bias, cudaStream_t stream);

// Gradients of attention_forward from dout (B, H, Tq, Dv), recomputing the probabilities tile by tile
// from q, k and the saved lse; `out` is the forward's output. `delta` (B, H, Tq) is scratch.
// dq: (B, H, Tq, Dk), dk: (B, H, Tk, Dk), dv: (B, H, Tk, Dv)
template <typename T>
void attention_backward(T* dq, T* dk, T* dv, T* delta, const T* dout, const T* q, const T* k, const T* v,
                        const T* out, const T* lse, const AttentionSizes& sizes, const AttentionBias& bias,
                        cudaStream_t stream);

}  // namespace ops::cuda
