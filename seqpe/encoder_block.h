// The SeqPE encoder's two shortcuts through a transformer block, composed from the block's parts
// (models/transformer_block.h) so that the block itself keeps one forward. Both give the values of
// the block's forward, for less work:
//  - Tokens that repeat. The block starts token-wise: qkv = c_attn(LN1(x)) reads each token's row
//    alone. The encoder's tokens are digits in slots, V·T + 1 distinct inputs however many
//    positions, so it computes qkv once per distinct input and gathers it per token
//    (forward_from_qkv).
//  - The last token only. The encoder reads the readout's final state, the last token, so its final
//    block needs only that row: keys and values of every token, the query, projection and MLP of
//    the last (forward_last).
// The encoder runs no position encoding inside its blocks and no KV cache.
//
//   N = positions (the batch), T = tokens per position (digit slots + readout), C = D_pe,
//   H = heads, D = C / H
#pragma once

#include "engine/rng.h"
#include "engine/tensor.h"
#include "models/transformer_block.h"

namespace seqpe {

using engine::Tensor;

// x: (N, T, C) -> (N, T, 3C): the block's token-wise start, c_attn(LN1(x)); row t depends on row t
// of x only.
Tensor block_qkv(const models::TransformerBlock& block, const Tensor& x);

// The block's forward for tokens x: (N, T, C) given their qkv: (N, T, 3C) (block_qkv of x, or
// gathered from block_qkv of the distinct inputs): (N, T, C), or with last_only the last token's
// row, (N, 1, C).
Tensor block_forward_from_qkv(const models::TransformerBlock& block, const Tensor& x, const Tensor& qkv, int layer,
                              engine::Generator& dropout_gen, bool last_only);

// x: (N, T, C) -> (N, 1, C), equal to the forward's last row under the causal mask (or without
// it): keys and values are projected for all T tokens, the query, projections and MLP for the last
// token only.
Tensor block_forward_last(const models::TransformerBlock& block, const Tensor& x, int layer,
                          engine::Generator& dropout_gen);

}  // namespace seqpe
