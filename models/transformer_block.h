// A pre-LayerNorm transformer block, as GPT-2 and ViT use it:
//   x = x + Dropout(Proj(Attention(LN1(x))))   (attention dropout on the probabilities, inside the op)
//   x = x + Dropout(MLP(LN2(x))),   MLP = Linear(C → r·C) · GELU · Linear(r·C → C) (one op, ops/mlp.h)
// Each residual add is done by the layer norm that reads its sum, in one op
// (ops::residual_layer_norm): the first add by LN2, the second by the next block's LN1 or the
// model's final norm, which is why a block can hand its output on with that add still pending
// (PendingResidual).
// with Hugging Face GPT-2's module names (ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc,
// mlp.c_proj) so that checkpoints map one to one. The position encoding enters through its hooks
// (position_encoding.h).
//
//   B = batch, T = time, C = channels, H = heads, D = C / H head dim, Dk = query/key head size
//   after the PE (D, or wider for SeqPE's attn_scalar under no grad), T_max = cache capacity
#pragma once

#include <memory>
#include <vector>

#include "engine/module.h"
#include "engine/rng.h"
#include "models/layers.h"
#include "models/position_encoding.h"

namespace models {

struct BlockConfig {
  int64_t channels = 768;
  int64_t heads = 12;
  int64_t mlp_ratio = 4;
  double layer_norm_eps = 1e-5;
  bool causal = true;
  bool qkv_bias = true;
  double residual_dropout = 0.0;
  double attention_dropout = 0.0;     // on the attention probabilities (GPT-2's attn_pdrop)
  double init_std = 0.02;
  double projection_init_std = 0.02;  // GPT-2 scales residual projections by 1/sqrt(2·layers)
  engine::Dtype dtype = engine::Dtype::f32;
};

// Keys and values of the tokens decoded so far, per layer, for incremental (KV-cached) decoding.
// The buffers are allocated once at full capacity on first use and filled in place, so decoding
// step by step never reallocates; attention reads the filled prefix through a narrowed view. Keys
// are cached *after* the PE's transform_qk (rotated, widened), so that the past tokens' keys are
// never recomputed.
struct KvCache {
  KvCache(int64_t layers, int64_t capacity) : k(size_t(layers)), v(size_t(layers)), capacity(capacity) {}
  std::vector<Tensor> k;  // per layer (B, H, T_max, Dk)
  std::vector<Tensor> v;  // per layer (B, H, T_max, D)
  int64_t capacity;       // T_max
  int64_t length = 0;     // tokens cached (T_past); the model advances it after every layer ran
  // Gpt with learned APE decoding beyond its trained rows: those rows resized once to the
  // evaluation length (T_eval, C), indexed at every step (Gpt::make_cache). Undefined otherwise.
  Tensor ape_positions;
};

// The residual stream with its last add not yet done: its value is stream + branch (stream alone
// when branch is undefined). The layer norm that reads it next does the add (LayerNorm::forward
// with a branch), so the sum is written once and read by no separate pass.
struct PendingResidual {
  Tensor stream;  // (B, T, C)
  Tensor branch;  // (B, T, C) or undefined
  // stream + branch as a tensor, for a caller that reads the sum itself.
  Tensor value() const;
};

class Attention : public engine::Module {
 public:
  Attention(const BlockConfig& config, engine::Generator& init_gen);
  // x: (B, T, C) -> (B, T, C): attend(split_heads(c_attn(x))). In training mode `dropout_gen` draws
  // the attention dropout mask. With a cache, x holds the T new tokens at positions
  // cache->length.., their keys and values are appended, and queries attend to all cached tokens
  // (no autograd: inference only).
  Tensor forward(const Tensor& x, int layer, PositionEncoding* pe, engine::Generator& dropout_gen,
                 KvCache* cache = nullptr) const;

  // The parts forward composes, public for callers that compose them another way (SeqPE's encoder,
  // seqpe/encoder_block.h). c_attn: C -> 3C, each output row [q | k | v] of one token's row.
  const Linear& c_attn() const { return *c_attn_; }
  // qkv: (B, T, 3C) -> q, k, v: (B, H, T, D) each, views of qkv (no copy).
  std::vector<Tensor> split_heads(const Tensor& qkv) const;
  // Attention of queries q: (B, H, Tq, D) over the keys and values k, v: (B, H, T, D) of all T
  // tokens, then the output projection: (B, Tq, C). The queries are the last Tq of the T positions
  // (Tq < T: the last tokens only). The PE transforms q and k and sets the mask or bias.
  Tensor attend(Tensor q, Tensor k, Tensor v, int layer, PositionEncoding* pe, engine::Generator& dropout_gen,
                KvCache* cache) const;

 private:
  BlockConfig config_;
  std::shared_ptr<Linear> c_attn_;  // C -> 3C: q, k, v
  std::shared_ptr<Linear> c_proj_;
};

class TransformerBlock : public engine::Module {
 public:
  TransformerBlock(const BlockConfig& config, engine::Generator& init_gen);
  // x: (B, T, C) -> (B, T, C): residual_and_mlp(x, attn(ln_1(x))). `dropout_gen` draws the attention
  // and residual dropout masks in training. With a cache, see Attention::forward. The activations
  // are kept or recomputed as models/recompute.h's setting says.
  Tensor forward(const Tensor& x, int layer, PositionEncoding* pe, engine::Generator& dropout_gen,
                 KvCache* cache = nullptr) const;
  // The same for an input whose last residual add is pending (ln_1 does it), giving an output whose
  // last add is pending: what a stack of blocks passes on (Gpt, Vit).
  PendingResidual forward(const PendingResidual& x, int layer, PositionEncoding* pe, engine::Generator& dropout_gen,
                          KvCache* cache = nullptr) const;

  // The parts forward composes, public for callers that compose them another way (SeqPE's encoder,
  // seqpe/encoder_block.h).
  const BlockConfig& config() const { return config_; }
  const LayerNorm& ln_1() const { return *ln_1_; }
  const Attention& attn() const { return *attn_; }
  // The block after its attention, for tokens x: (B, T', C) whose attention outputs are
  // attended: (B, T', C): h = x + Dropout(attended) (fused with LN2), then h + Dropout(MLP(LN2(h))),
  // (B, T', C), that last add left pending.
  PendingResidual residual_and_mlp(const Tensor& x, const Tensor& attended, engine::Generator& dropout_gen) const;

 private:
  // forward(PendingResidual) with every activation kept for the backward (the recomputed rerun's too).
  PendingResidual forward_kept(const PendingResidual& x, int layer, PositionEncoding* pe,
                               engine::Generator& dropout_gen, KvCache* cache) const;

  BlockConfig config_;
  std::shared_ptr<LayerNorm> ln_1_, ln_2_;
  std::shared_ptr<Attention> attn_;
  std::shared_ptr<Linear> c_fc_, c_proj_;  // mlp.c_fc, mlp.c_proj
};

}  // namespace models
