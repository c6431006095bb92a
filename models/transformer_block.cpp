#include "models/transformer_block.h"

#include <cmath>

#include "ops/dropout.h"
#include "ops/elementwise.h"

namespace models {

namespace {
// A container module so that the MLP's parameters are named mlp.c_fc / mlp.c_proj.
class Container : public engine::Module {
 public:
  template <typename M>
  std::shared_ptr<M> add(const std::string& name, std::shared_ptr<M> child) {
    return register_module(name, std::move(child));
  }
};
}  // namespace

Attention::Attention(const BlockConfig& config, engine::Generator& init_gen) : config_(config) {
  ENGINE_CHECK(config.channels % config.heads == 0, "attention: width ", config.channels,
               " is not divisible by the number of heads ", config.heads);
  c_attn_ = register_module("c_attn", std::make_shared<Linear>(config.channels, 3 * config.channels, config.qkv_bias,
                                                               config.init_std, init_gen, config.dtype));
  c_proj_ = register_module("c_proj", std::make_shared<Linear>(config.channels, config.channels, true,
                                                               config.projection_init_std, init_gen, config.dtype));
}

Tensor Attention::forward(const Tensor& x, int layer, PositionEncoding* pe) const {
  const int64_t B = x.size(0), T = x.size(1), C = config_.channels, H = config_.heads, D = C / H;
  // (B, T, 3C) -> three (B, H, T, D) views of one buffer; the attention op reads strided inputs.
  Tensor qkv = c_attn_->forward(x).view({B, T, 3, H, D});
  Tensor q = qkv.select(2, 0).permute({0, 2, 1, 3});
  Tensor k = qkv.select(2, 1).permute({0, 2, 1, 3});
  Tensor v = qkv.select(2, 2).permute({0, 2, 1, 3});
  ops::AttentionOptions options;
  options.causal = config_.causal;
  options.scale = 1.0 / std::sqrt(double(D));
  if (pe) {
    pe->transform_qk(layer, q, k);
    pe->attention_options(layer, options);
  }
  Tensor y = ops::attention(q, k, v, options);                  // (B, H, T, D)
  return c_proj_->forward(y.permute({0, 2, 1, 3}).reshape({B, T, C}));
}

TransformerBlock::TransformerBlock(const BlockConfig& config, engine::Generator& init_gen) : config_(config) {
  ln_1_ = register_module("ln_1", std::make_shared<LayerNorm>(config.channels, config.layer_norm_eps, config.dtype));
  attn_ = register_module("attn", std::make_shared<Attention>(config, init_gen));
  ln_2_ = register_module("ln_2", std::make_shared<LayerNorm>(config.channels, config.layer_norm_eps, config.dtype));
  auto mlp = register_module("mlp", std::make_shared<Container>());
  const int64_t hidden = config.mlp_ratio * config.channels;
  c_fc_ = mlp->add("c_fc", std::make_shared<Linear>(config.channels, hidden, true, config.init_std, init_gen,
                                                    config.dtype));
  c_proj_ = mlp->add("c_proj", std::make_shared<Linear>(hidden, config.channels, true, config.projection_init_std,
                                                        init_gen, config.dtype));
}

Tensor TransformerBlock::forward(const Tensor& x, int layer, PositionEncoding* pe,
                                 engine::Generator& dropout_gen) const {
  const bool training = is_training();
  Tensor attended = attn_->forward(ln_1_->forward(x), layer, pe);
  Tensor h = x + ops::dropout(attended, config_.residual_dropout, dropout_gen, training);
  Tensor mlp_out = c_proj_->forward(c_fc_->forward(ln_2_->forward(h), ops::Activation::gelu));
  return h + ops::dropout(mlp_out, config_.residual_dropout, dropout_gen, training);
}

}  // namespace models
