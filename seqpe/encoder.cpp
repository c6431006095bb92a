#include "seqpe/encoder.h"

#include <string>

#include "engine/error.h"
#include "ops/elementwise.h"
#include "ops/indexing.h"

namespace seqpe {

namespace {
// A container module so that the blocks are named h.0, h.1, ... as in GPT-2.
class BlockList : public engine::Module {
 public:
  std::shared_ptr<models::TransformerBlock> add(std::shared_ptr<models::TransformerBlock> block) {
    return register_module(std::to_string(count_++), std::move(block));
  }

 private:
  int count_ = 0;
};
}  // namespace

SeqPeEncoder::SeqPeEncoder(const SeqPeEncoderConfig& config, engine::Generator& init_gen) : config_(config) {
  ENGINE_CHECK(config.dims >= 1 && config.max_digits >= 1 && config.base >= 2,
               "SeqPeEncoder: needs dims >= 1, max_digits >= 1 and base >= 2, got dims ", config.dims,
               ", max_digits ", config.max_digits, ", base ", config.base);
  ENGINE_CHECK(config.temperature > 0, "SeqPeEncoder: temperature must be positive, got ", config.temperature);
  ENGINE_CHECK(config.layers >= 1, "SeqPeEncoder: needs at least one block, got layers ", config.layers);
  const int64_t C = config.channels, T = config.sequence_length();
  const double std = config.init_std;
  digit_embedding_ = register_module("digit_embedding",
                                     std::make_shared<models::Embedding>(config.base, C, std, init_gen, config.dtype));
  slot_embedding_ =
      register_module("slot_embedding", std::make_shared<models::Embedding>(T, C, std, init_gen, config.dtype));
  if (config.dims > 1) {
    dim_embedding_ = register_module(
        "dim_embedding", std::make_shared<models::Embedding>(config.dims, C, std, init_gen, config.dtype));
  }
  Tensor readout = Tensor::empty({1, C}, config.dtype);
  engine::fill_random_(readout, init_gen, {engine::RandomDistribution::normal, 0.0, std});
  readout_ = &register_parameter("readout", readout);

  models::BlockConfig block;
  block.channels = C;
  block.heads = config.heads;
  block.layer_norm_eps = config.layer_norm_eps;
  block.causal = config.causal;
  block.qkv_bias = true;
  block.residual_dropout = config.residual_dropout;
  block.init_std = std;
  block.projection_init_std = std;  // SeqPE keeps N(0, 0.02) on c_proj: no 1/sqrt(2L)
  block.dtype = config.dtype;
  auto h = register_module("h", std::make_shared<BlockList>());
  for (int64_t layer = 0; layer < config.layers; ++layer) {
    blocks_.push_back(h->add(std::make_shared<models::TransformerBlock>(block, init_gen)));
  }
  ln_f_ = register_module("ln_f", std::make_shared<models::LayerNorm>(C, config.layer_norm_eps, config.dtype));
  out_proj_ = register_module(
      "out_proj", std::make_shared<models::Linear>(C, config.out_features, true, std, init_gen, config.dtype));

  std::vector<int64_t> slot_dims(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) slot_dims[size_t(t)] = t / config.max_digits;
  slot_dims_ = Tensor::from_indices(slot_dims, {T});
}

Tensor SeqPeEncoder::forward(const Tensor& digits, engine::Generator& dropout_gen) const {
  const int64_t T = config_.sequence_length(), C = config_.channels;
  ENGINE_CHECK(digits.dim() == 2 && digits.size(1) == T, "SeqPeEncoder: digits must be (N, ", T, "), got ",
               digits.describe());
  const int64_t N = digits.size(0);
  // Slot (and dimension) embeddings are the same for every position: one (T, C) table broadcast
  // over N.
  Tensor slot = slot_embedding_->weight();                                  // (T, C)
  if (dim_embedding_) {
    if (slot_dims_.device() != slot.device()) slot_dims_ = slot_dims_.to(slot.device());
    slot = slot + dim_embedding_->forward(slot_dims_);                      // (T, C)
  }
  Tensor x = digit_embedding_->forward(digits) + slot;                     // (N, T, C)
  x = ops::concat({x, readout_->unsqueeze(0).expand({N, 1, C})}, 1);         // (N, T+1, C)
  // Only the readout's final state is read, so the last block computes only its row (its keys and
  // values still come from every token): a third of the encoder's work, with the same result.
  const size_t last = blocks_.size() - 1;
  for (size_t layer = 0; layer < last; ++layer) x = blocks_[layer]->forward(x, int(layer), nullptr, dropout_gen);
  x = blocks_[last]->forward_last(x, int(last), nullptr, dropout_gen);       // (N, 1, C)
  // Under the causal mask only the last token (the readout) has seen every digit.
  Tensor out = out_proj_->forward(ln_f_->forward(x.select(1, 0)));          // (N, O)
  return config_.temperature == 1.0 ? out : out * (1.0 / config_.temperature);
}

}  // namespace seqpe
