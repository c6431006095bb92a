// A pre-LayerNorm transformer block, as GPT-2 and ViT use it:
//   x = x + Dropout(Proj(Attention(LN1(x))))
//   x = x + Dropout(MLP(LN2(x))),   MLP = Linear(C → r·C) · GELU · Linear(r·C → C)
// with Hugging Face GPT-2's module names (ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc,
// mlp.c_proj) so that checkpoints map one to one. The position encoding enters through its hooks
// (position_encoding.h).
//
//   B = batch, T = time, C = channels, H = heads, D = C / H head dim
#pragma once

#include <memory>

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
  double init_std = 0.02;
  double projection_init_std = 0.02;  // GPT-2 scales residual projections by 1/sqrt(2·layers)
  engine::DType dtype = engine::DType::f32;
};

class Attention : public engine::Module {
 public:
  Attention(const BlockConfig& config, engine::Generator& init_gen);
  // x: (B, T, C) -> (B, T, C)
  Tensor forward(const Tensor& x, int layer, PositionEncoding* pe) const;

 private:
  BlockConfig config_;
  std::shared_ptr<Linear> c_attn_;  // C -> 3C: q, k, v
  std::shared_ptr<Linear> c_proj_;
};

class TransformerBlock : public engine::Module {
 public:
  TransformerBlock(const BlockConfig& config, engine::Generator& init_gen);
  // x: (B, T, C) -> (B, T, C). `dropout_gen` draws the residual dropout masks in training.
  Tensor forward(const Tensor& x, int layer, PositionEncoding* pe, engine::Generator& dropout_gen) const;

 private:
  BlockConfig config_;
  std::shared_ptr<LayerNorm> ln_1_, ln_2_;
  std::shared_ptr<Attention> attn_;
  std::shared_ptr<Linear> c_fc_, c_proj_;
};

}  // namespace models
