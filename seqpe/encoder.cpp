// The SeqPE encoder (seqpe/encoder.h): digit, slot and dimension embeddings, the blocks, the
// readout, and the first block's work on distinct tokens.
#include "seqpe/encoder.h"

#include <vector>

#include "engine/error.h"
#include "ops/elementwise.h"
#include "ops/indexing.h"
#include "seqpe/encoder_block.h"

namespace seqpe {

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
  // Named h.0, h.1, ... as in GPT-2.
  blocks_ = register_module("h", std::make_shared<engine::ModuleList<models::TransformerBlock>>());
  for (int64_t layer = 0; layer < config.layers; ++layer)
    blocks_->append(std::make_shared<models::TransformerBlock>(block, init_gen));
  ln_f_ = register_module("ln_f", std::make_shared<models::LayerNorm>(C, config.layer_norm_eps, config.dtype));
  out_proj_ = register_module(
      "out_proj", std::make_shared<models::Linear>(C, config.out_features, true, std, init_gen, config.dtype));

  std::vector<int64_t> slot_dims(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) slot_dims[size_t(t)] = t / config.max_digits;
  slot_dims_ = Tensor::from_indices(slot_dims, {T});
}

namespace {
// The row of the distinct inputs (N, T) digits' tokens read: digit d in slot t -> d·T + t, the
// readout (last, at T) -> V·T. (N·(T+1)) i64 on `device`, computed on the host.
Tensor token_rows(const Tensor& digits, int64_t V, engine::Device device) {
  ENGINE_CHECK(digits.dtype() == engine::Dtype::i64, "SeqPeEncoder: digits must be i64, got ", digits.describe());
  const Tensor host = digits.to(engine::Device::cpu()).contiguous();
  const int64_t N = host.size(0), T = host.size(1);
  const int64_t* d = host.data<int64_t>();
  std::vector<int64_t> rows(size_t(N * (T + 1)));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t t = 0; t < T; ++t) {
      const int64_t digit = d[n * T + t];
      ENGINE_CHECK(digit >= 0 && digit < V, "SeqPeEncoder: digit ", digit, " at (", n, ", ", t, ") is outside [0, ", V,
                   ")");
      rows[size_t(n * (T + 1) + t)] = digit * T + t;
    }
    rows[size_t(n * (T + 1) + T)] = V * T;
  }
  return Tensor::from_indices(rows, {N * (T + 1)}).to(device);
}
}  // namespace

Tensor SeqPeEncoder::forward(const Tensor& digits, engine::Generator& dropout_gen) const {
  const int64_t T = config_.sequence_length(), C = config_.channels, V = config_.base;
  ENGINE_CHECK(digits.dim() == 2 && digits.size(1) == T, "SeqPeEncoder: digits must be (N, ", T, "), got ",
               digits.describe());
  const int64_t N = digits.size(0);
  // Slot (and dimension) embeddings are the same for every position: one (T, C) table.
  Tensor slot = slot_embedding_->weight();                                  // (T, C)
  if (dim_embedding_) {
    if (slot_dims_.device() != slot.device()) slot_dims_ = slot_dims_.to(slot.device());
    slot = slot + dim_embedding_->forward(slot_dims_);                      // (T, C)
  }
  // A token is a digit in a slot or the readout: V·T + 1 distinct inputs, however many positions.
  Tensor inputs = (digit_embedding_->weight().unsqueeze(1) + slot.unsqueeze(0)).reshape({V * T, C});
  inputs = ops::concat({inputs, *readout_}, 0);                             // (V·T + 1, C)
  const Tensor rows = token_rows(digits, V, inputs.device());              // (N·(T+1))
  Tensor x = ops::index_select(inputs, 0, rows).view({N, T + 1, C});
  // The first block's LayerNorm and QKV projection read one token at a time, so they run on the
  // distinct inputs and the tokens gather their rows: the same values, ~18 % less of the encoder's
  // work at the benchmark's 1,296 positions (docs/seqpe.md).
  Tensor qkv = ops::index_select(block_qkv(blocks_->at(0), inputs), 0, rows).view({N, T + 1, 3 * C});
  // Only the readout's final state is read, so the last block computes only its row (its keys and
  // values still come from every token): a third of the encoder's work, with the same result.
  const size_t last = blocks_->size() - 1;
  x = block_forward_from_qkv(blocks_->at(0), x, qkv, 0, dropout_gen, last == 0);
  for (size_t layer = 1; layer < last; ++layer) x = blocks_->at(layer).forward(x, int(layer), nullptr, dropout_gen);
  if (last > 0) x = block_forward_last(blocks_->at(last), x, int(last), dropout_gen);  // (N, 1, C)
  // Under the causal mask only the last token (the readout) has seen every digit.
  Tensor out = out_proj_->forward(ln_f_->forward(x.select(1, 0)));          // (N, O)
  return config_.temperature == 1.0 ? out : out * (1.0 / config_.temperature);
}

}  // namespace seqpe
