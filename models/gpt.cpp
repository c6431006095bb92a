#include "models/gpt.h"

#include <cmath>

#include "models/model_config.h"
#include "ops/dropout.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"

namespace models {

namespace {
// Holds the blocks so that they are named h.0, h.1, ...
class BlockList : public engine::Module {
 public:
  std::shared_ptr<TransformerBlock> add(std::shared_ptr<TransformerBlock> block) {
    return register_module(std::to_string(count_++), std::move(block));
  }

 private:
  int count_ = 0;
};
}  // namespace

Gpt::Gpt(const GptConfig& config, engine::Generator& init_gen, std::shared_ptr<PositionEncoding> pe)
    : config_(config), pe_(std::move(pe)) {
  validate_gpt_config(config);
  check_position_encoding_matches("Gpt", config.position_encoding, pe_.get());
  wte_ = register_module("wte", std::make_shared<Embedding>(config.vocab_size, config.channels, config.init_std,
                                                            init_gen, config.dtype));
  if (config.position_encoding == "ape")
    wpe_ = register_module("wpe", std::make_shared<Embedding>(config.context, config.channels, config.init_std,
                                                              init_gen, config.dtype));
  BlockConfig block;
  block.channels = config.channels;
  block.heads = config.heads;
  block.mlp_ratio = config.mlp_ratio;
  block.layer_norm_eps = config.layer_norm_eps;
  block.causal = true;
  block.residual_dropout = config.residual_dropout;
  block.init_std = config.init_std;
  // GPT-2 scales the residual projections' init by 1/sqrt(2·layers): each layer adds two of them.
  block.projection_init_std = config.init_std / std::sqrt(2.0 * double(config.layers));
  block.dtype = config.dtype;
  auto h = register_module("h", std::make_shared<BlockList>());
  for (int64_t layer = 0; layer < config.layers; ++layer)
    blocks_.push_back(h->add(std::make_shared<TransformerBlock>(block, init_gen)));
  ln_f_ = register_module("ln_f", std::make_shared<LayerNorm>(config.channels, config.layer_norm_eps, config.dtype));
  if (pe_) register_module("pe", pe_);
}

Tensor Gpt::forward(const Tensor& tokens, engine::Generator& dropout_gen, const Tensor& positions) {
  ENGINE_CHECK(tokens.dim() == 2, "Gpt::forward: tokens must be (B, T), got ", tokens.describe());
  const int64_t B = tokens.size(0), T = tokens.size(1);
  Tensor position_ids = positions.defined() ? positions : Tensor::arange(T, engine::DType::i64, tokens.device());
  Tensor h = wte_->forward(tokens);  // (B, T, C)
  if (wpe_) {
    ENGINE_CHECK(T <= config_.context, "Gpt::forward: sequence of ", T, " tokens exceeds the learned position table (",
                 config_.context, " rows); use a PE that extrapolates or interpolate the table");
    h = h + wpe_->forward(position_ids);
  }
  if (pe_) {
    Positions p;
    p.ids = position_ids;
    p.batch = B;
    pe_->prepare(p);
    Tensor added = pe_->input_embedding();
    if (added.defined()) h = h + added;
  }
  h = ops::dropout(h, config_.embedding_dropout, dropout_gen, is_training());
  for (size_t layer = 0; layer < blocks_.size(); ++layer)
    h = blocks_[layer]->forward(h, int(layer), pe_.get(), dropout_gen);
  h = ln_f_->forward(h);
  return ops::matmul(h, wte_->weight(), false, true);  // tied head: (B, T, C) · (V, C)ᵀ
}

}  // namespace models
