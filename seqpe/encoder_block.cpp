// The SeqPE encoder's shortcuts through a transformer block (seqpe/encoder_block.h): a block from a
// given qkv, and a block for the last token only.
#include "seqpe/encoder_block.h"

#include <vector>

namespace seqpe {

Tensor block_qkv(const models::TransformerBlock& block, const Tensor& x) {
  return block.attn().c_attn().forward(block.ln_1().forward(x));
}

Tensor block_forward_from_qkv(const models::TransformerBlock& block, const Tensor& x, const Tensor& qkv, int layer,
                              engine::Generator& dropout_gen, bool last_only) {
  const models::Attention& attn = block.attn();
  if (!last_only) {
    const std::vector<Tensor> heads = attn.split_heads(qkv);  // q, k, v: (N, H, T, D)
    return block.residual_and_mlp(x, attn.attend(heads[0], heads[1], heads[2], layer, nullptr, dropout_gen, nullptr),
                                  dropout_gen)
        .value();
  }
  const int64_t N = qkv.size(0), T = qkv.size(1), C = block.config().channels, H = block.config().heads, D = C / H;
  const Tensor rows = qkv.view({N, T, 3, H, D});
  // The query of the last token sits at key position T-1 (the attention op's convention), so the
  // causal mask lets it see every key.
  Tensor q = rows.select(2, 0).narrow(1, T - 1, 1).permute({0, 2, 1, 3});  // (N, H, 1, D)
  Tensor k = rows.select(2, 1).permute({0, 2, 1, 3});                      // (N, H, T, D)
  Tensor v = rows.select(2, 2).permute({0, 2, 1, 3});
  const Tensor attended = attn.attend(q, k, v, layer, nullptr, dropout_gen, nullptr);  // (N, 1, C)
  return block.residual_and_mlp(x.narrow(1, T - 1, 1), attended, dropout_gen).value();
}

Tensor block_forward_last(const models::TransformerBlock& block, const Tensor& x, int layer,
                          engine::Generator& dropout_gen) {
  const int64_t N = x.size(0), T = x.size(1), C = block.config().channels, H = block.config().heads, D = C / H;
  const Tensor normed = block.ln_1().forward(x);
  // Keys and values of every token, the query of the last one only (c_attn's outputs are q | k | v).
  const models::Linear& c_attn = block.attn().c_attn();
  const Tensor kv = c_attn.forward_outputs(normed, C, 2 * C).view({N, T, 2, H, D});
  Tensor q = c_attn.forward_outputs(normed.narrow(1, T - 1, 1), 0, C).view({N, 1, H, D}).permute({0, 2, 1, 3});
  Tensor k = kv.select(2, 0).permute({0, 2, 1, 3});
  Tensor v = kv.select(2, 1).permute({0, 2, 1, 3});
  const Tensor attended = block.attn().attend(q, k, v, layer, nullptr, dropout_gen, nullptr);  // (N, 1, C)
  return block.residual_and_mlp(x.narrow(1, T - 1, 1), attended, dropout_gen).value();
}

}  // namespace seqpe
