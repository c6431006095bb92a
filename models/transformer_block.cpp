// The pre-LN transformer block and its attention (models/transformer_block.h), with the KV cache
// for decoding.
#include "models/transformer_block.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/module_dict.h"
#include "engine/recompute.h"
#include "models/recompute.h"
#include "ops/dropout.h"
#include "ops/elementwise.h"
#include "ops/indexing.h"
#include "ops/mlp.h"

namespace models {

namespace {
// Writes this step's k, v at rows [length, length + T) of the layer's cache buffers (allocated at
// full capacity on first use) and replaces k, v by views of all cached rows: (B, H, length + T, ·).
// The attention op's causal convention (queries are the last Tq key positions) then masks exactly
// the future tokens, and ALiBi sees absolute positions.
void append_to_cache(KvCache& cache, int layer, Tensor& k, Tensor& v) {
  ENGINE_CHECK(!engine::grad_mode_enabled(), "attention: a KV cache is for inference; run under engine::NoGradGuard");
  const int64_t past = cache.length, T = k.size(2);
  ENGINE_CHECK(past + T <= cache.capacity, "attention: the KV cache holds ", cache.capacity, " tokens; ", past,
               " are cached and ", T, " more were given");
  Tensor& k_buffer = cache.k[size_t(layer)];
  Tensor& v_buffer = cache.v[size_t(layer)];
  if (!k_buffer.defined()) {
    k_buffer = Tensor::empty({k.size(0), k.size(1), cache.capacity, k.size(3)}, k.dtype(), k.device());
    v_buffer = Tensor::empty({v.size(0), v.size(1), cache.capacity, v.size(3)}, v.dtype(), v.device());
  }
  ENGINE_CHECK(k_buffer.size(0) == k.size(0) && k_buffer.size(3) == k.size(3), "attention: the KV cache was filled ",
               "with keys ", k_buffer.describe(), " but this step gives ", k.describe(), "; use one cache per batch");
  k_buffer.narrow(2, past, T).copy_(k);
  v_buffer.narrow(2, past, T).copy_(v);
  k = k_buffer.narrow(2, 0, past + T);
  v = v_buffer.narrow(2, 0, past + T);
}
}  // namespace

Attention::Attention(const BlockConfig& config, engine::Generator& init_gen) : config_(config) {
  ENGINE_CHECK(config.channels % config.heads == 0, "attention: width ", config.channels,
               " is not divisible by the number of heads ", config.heads);
  c_attn_ = register_module("c_attn", std::make_shared<Linear>(config.channels, 3 * config.channels, config.qkv_bias,
                                                               config.init_std, init_gen, config.dtype));
  c_proj_ = register_module("c_proj", std::make_shared<Linear>(config.channels, config.channels, true,
                                                               config.projection_init_std, init_gen, config.dtype));
}

Tensor Attention::forward(const Tensor& x, int layer, PositionEncoding* pe, engine::Generator& dropout_gen,
                          KvCache* cache) const {
  const std::vector<Tensor> heads = split_heads(c_attn_->forward(x));
  return attend(heads[0], heads[1], heads[2], layer, pe, dropout_gen, cache);
}

std::vector<Tensor> Attention::split_heads(const Tensor& qkv) const {
  const int64_t B = qkv.size(0), T = qkv.size(1), C = config_.channels, H = config_.heads, D = C / H;
  // (B, T, 3C) -> three (B, H, T, D) views of one buffer; the attention op reads strided inputs.
  // split's backward joins the three gradients in one pass; a select per part would scatter each
  // into a zero-filled (B, T, 3, H, D) buffer, three buffers then summed (2 % of a GPT step).
  std::vector<Tensor> parts = ops::split(qkv, {C, C, C}, 2);
  for (Tensor& part : parts) part = part.view({B, T, H, D}).permute({0, 2, 1, 3});
  return parts;
}

Tensor Attention::attend(Tensor q, Tensor k, Tensor v, int layer, PositionEncoding* pe, engine::Generator& dropout_gen,
                         KvCache* cache) const {
  const int64_t B = q.size(0), Tq = q.size(2), C = config_.channels, D = C / config_.heads;
  ops::AttentionOptions options;
  options.causal = config_.causal;
  options.scale = 1.0 / std::sqrt(double(D));
  if (pe) {
    pe->transform_qk(layer, q, k);
    pe->attention_options(layer, options);
    // A PE's score bias covers the forward's T positions as queries; queries are the last Tq of them
    // (a caller that asks for the last tokens only).
    Tensor& bias = options.score_bias;
    if (bias.defined() && bias.size(2) != Tq) bias = bias.narrow(2, bias.size(2) - Tq, Tq);
  }
  if (cache) append_to_cache(*cache, layer, k, v);
  if (is_training()) {
    options.dropout_p = config_.attention_dropout;
    options.dropout_gen = &dropout_gen;
  }
  Tensor y = ops::attention(q, k, v, options);                  // (B, H, Tq, D)
  return c_proj_->forward(y.permute({0, 2, 1, 3}).reshape({B, Tq, C}));
}

TransformerBlock::TransformerBlock(const BlockConfig& config, engine::Generator& init_gen) : config_(config) {
  ln_1_ = register_module("ln_1", std::make_shared<LayerNorm>(config.channels, config.layer_norm_eps, config.dtype));
  attn_ = register_module("attn", std::make_shared<Attention>(config, init_gen));
  ln_2_ = register_module("ln_2", std::make_shared<LayerNorm>(config.channels, config.layer_norm_eps, config.dtype));
  auto mlp = register_module("mlp", std::make_shared<engine::ModuleDict<Linear>>());
  const int64_t hidden = config.mlp_ratio * config.channels;
  c_fc_ = mlp->insert("c_fc", std::make_shared<Linear>(config.channels, hidden, true, config.init_std, init_gen,
                                                       config.dtype));
  c_proj_ = mlp->insert("c_proj", std::make_shared<Linear>(hidden, config.channels, true, config.projection_init_std,
                                                           init_gen, config.dtype));
}

Tensor PendingResidual::value() const { return branch.defined() ? stream + branch : stream; }

Tensor TransformerBlock::forward(const Tensor& x, int layer, PositionEncoding* pe, engine::Generator& dropout_gen,
                                 KvCache* cache) const {
  return forward(PendingResidual{x, Tensor()}, layer, pe, dropout_gen, cache).value();
}

PendingResidual TransformerBlock::forward(const PendingResidual& x, int layer, PositionEncoding* pe,
                                          engine::Generator& dropout_gen, KvCache* cache) const {
  if (activation_recompute() != Recompute::block || cache || !engine::grad_mode_enabled())
    return forward_kept(x, layer, pe, dropout_gen, cache);
  // Recompute the block in the backward (models/recompute.h). The PE's attention options are asked
  // for once before, so that a PE that makes a tensor on its first call and serves it to every layer
  // (SeqPE's shared position logits) makes it outside the recomputed part: the rerun must read the
  // same tensors as the first forward. The function captures by value: it runs again in the backward.
  if (pe) {
    ops::AttentionOptions options;
    options.scale = 1.0 / std::sqrt(double(config_.channels / config_.heads));  // as Attention::attend
    pe->attention_options(layer, options);
  }
  engine::Generator* gen = &dropout_gen;
  auto block = [this, x, layer, pe, gen] {
    const PendingResidual out = forward_kept(x, layer, pe, *gen, nullptr);
    return std::vector<Tensor>{out.stream, out.branch};
  };
  const std::vector<Tensor> out = engine::recompute_in_backward(block, {gen});
  return {out[0], out[1]};
}

PendingResidual TransformerBlock::forward_kept(const PendingResidual& x, int layer, PositionEncoding* pe,
                                               engine::Generator& dropout_gen, KvCache* cache) const {
  const auto [stream, normed] = ln_1_->forward(x.stream, x.branch);  // the previous block's last add, and LN1
  return residual_and_mlp(stream, attn_->forward(normed, layer, pe, dropout_gen, cache), dropout_gen);
}

PendingResidual TransformerBlock::residual_and_mlp(const Tensor& x, const Tensor& attended,
                                                   engine::Generator& dropout_gen) const {
  const bool training = is_training();
  const auto [h, normed] = ln_2_->forward(x, ops::dropout(attended, config_.residual_dropout, dropout_gen, training));
  Tensor mlp_out = ops::mlp(normed, c_fc_->weight(), *c_fc_->bias(), c_proj_->weight(), *c_proj_->bias(),
                           activation_recompute() == Recompute::gelu);
  return {h, ops::dropout(mlp_out, config_.residual_dropout, dropout_gen, training)};
}

}  // namespace models
