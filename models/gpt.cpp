// The GPT model (models/gpt.h): embeddings, blocks and tied head, the training loss, the forward
// with a KV cache, and generation.
#include "models/gpt.h"

#include <algorithm>
#include <cmath>

#include "engine/autograd.h"
#include "engine/checked_size.h"
#include "models/model_config.h"
#include "models/pe/ape.h"
#include "ops/cross_entropy.h"
#include "ops/dropout.h"
#include "ops/elementwise.h"
#include "ops/indexing.h"
#include "ops/matmul.h"

namespace models {

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
  block.attention_dropout = config.attention_dropout;
  block.init_std = config.init_std;
  // GPT-2 scales the residual projections' init by 1/sqrt(2·layers): each layer adds two of them.
  block.projection_init_std = config.init_std / std::sqrt(2.0 * double(config.layers));
  block.dtype = config.dtype;
  blocks_ = register_module("h", std::make_shared<engine::ModuleList<TransformerBlock>>());  // h.0, h.1, ...
  for (int64_t layer = 0; layer < config.layers; ++layer)
    blocks_->append(std::make_shared<TransformerBlock>(block, init_gen));
  ln_f_ = register_module("ln_f", std::make_shared<LayerNorm>(config.channels, config.layer_norm_eps, config.dtype));
  if (pe_) register_module("pe", pe_);
}

Tensor Gpt::learned_positions(int64_t T) const {
  const int64_t trained = ape_train_length();
  if (T <= trained) return wpe_->forward(Tensor::arange(T, engine::Dtype::i64, wpe_->weight().device()));
  ENGINE_CHECK(!is_training(), "Gpt: a sequence of ", T, " tokens exceeds the ", trained,
               " learned positions that training uses ('ape_train_length'); longer sequences resize them by "
               "interpolation, which is for evaluation only");
  return pe::interpolate_linear(wpe_->weight().narrow(0, 0, trained), T);
}

Tensor Gpt::embed(const Tensor& tokens, const Tensor& learned, const Tensor& position_ids,
                  engine::Generator& dropout_gen) {
  const int64_t B = tokens.size(0);
  Tensor h = wte_->forward(tokens);  // (B, T, C)
  if (learned.defined()) h = h + learned;
  if (pe_) {
    Positions p;
    p.ids = position_ids;
    p.batch = B;
    p.device = tokens.device();
    pe_->prepare(p);
    Tensor added = pe_->input_embedding();
    if (added.defined()) h = h + added;
  }
  return ops::dropout(h, config_.embedding_dropout, dropout_gen, is_training());
}

Tensor Gpt::head(const PendingResidual& h) const {
  const Tensor normed = ln_f_->forward(h.stream, h.branch).normed;
  return ops::matmul(normed, wte_->weight(), false, true);  // tied head: (B, T, C) · (V, C)ᵀ
}

Tensor Gpt::forward(const Tensor& tokens, engine::Generator& dropout_gen, const Tensor& positions) {
  ENGINE_CHECK(tokens.dim() == 2, "Gpt::forward: tokens must be (B, T), got ", tokens.describe());
  const int64_t T = tokens.size(1);
  // The PE reads the ids on the host; the learned table gathers them on the model's device.
  Tensor position_ids =
      positions.defined() ? positions.to(engine::Device::cpu()) : Tensor::arange(T, engine::Dtype::i64);
  Tensor learned;
  if (wpe_) learned = positions.defined() ? wpe_->forward(positions.to(wpe_->weight().device())) : learned_positions(T);
  // Each block's last residual add is left to the norm after it (PendingResidual).
  PendingResidual h{embed(tokens, learned, position_ids, dropout_gen), Tensor()};
  for (size_t layer = 0; layer < blocks_->size(); ++layer)
    h = blocks_->at(layer).forward(h, int(layer), pe_.get(), dropout_gen);
  return head(h);
}

Tensor Gpt::loss(const Tensor& tokens, const Tensor& targets, engine::Generator& dropout_gen, int64_t ignore_index,
                 const Tensor& positions) {
  return ops::cross_entropy_consuming(forward(tokens, dropout_gen, positions), targets, ignore_index);
}

KvCache Gpt::make_cache(int64_t capacity, int64_t ape_length) const {
  KvCache cache(config_.layers, capacity);
  if (!wpe_ || ape_length <= ape_train_length()) return cache;
  ENGINE_CHECK(capacity <= ape_length, "Gpt::make_cache: a cache of ", capacity, " tokens needs an ape_length of at ",
               "least that, got ", ape_length);
  engine::NoGradGuard no_grad;
  cache.ape_positions = pe::interpolate_linear(wpe_->weight().narrow(0, 0, ape_train_length()), ape_length);
  return cache;
}

Tensor Gpt::forward_cached(const Tensor& tokens, KvCache& cache) {
  ENGINE_CHECK(tokens.dim() == 2 && tokens.size(1) > 0, "Gpt::forward_cached: tokens must be (B, T) with T > 0, got ",
               tokens.describe());
  ENGINE_CHECK(!is_training(), "Gpt::forward_cached: call eval() first (dropout would differ from step to step)");
  ENGINE_CHECK(cache.k.size() == blocks_->size(), "Gpt::forward_cached: the cache has ", cache.k.size(),
               " layers, the model ", blocks_->size(), "; make it with make_cache()");
  engine::NoGradGuard no_grad;
  const int64_t T = tokens.size(1);
  const int64_t ape_rows = cache.ape_positions.defined() ? cache.ape_positions.size(0) : ape_train_length();
  ENGINE_CHECK(!wpe_ || cache.length + T <= ape_rows, "Gpt::forward_cached: a sequence reaching position ",
               cache.length + T - 1, " exceeds the ", ape_rows, " learned positions; make the cache with an ",
               "ape_length that covers it, or evaluate with forward(), which interpolates the table to the length");
  std::vector<int64_t> ids(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) ids[size_t(t)] = cache.length + t;
  Tensor position_ids = Tensor::from_indices(ids, {T}, engine::Dtype::i64);  // host: for the PE
  engine::Generator unused(0);  // no dropout in evaluation mode
  Tensor learned;
  if (cache.ape_positions.defined()) learned = ops::index_select(cache.ape_positions, 0, position_ids.to(tokens.device()));
  else if (wpe_) learned = wpe_->forward(position_ids.to(tokens.device()));
  PendingResidual h{embed(tokens, learned, position_ids, unused), Tensor()};
  for (size_t layer = 0; layer < blocks_->size(); ++layer)
    h = blocks_->at(layer).forward(h, int(layer), pe_.get(), unused, &cache);
  cache.length += T;
  return head(h);
}

namespace {
// tokens (B, T) i64 and (B, 1) next tokens -> (B, T + 1).
Tensor append_column(const Tensor& tokens, const Tensor& next) { return ops::concat({tokens, next}, 1); }
}  // namespace

Tensor Gpt::generate(const Tensor& prompt, int64_t new_tokens, bool use_cache) {
  engine::Generator unused(0);  // greedy decoding draws nothing
  return generate(prompt, new_tokens, SamplingOptions{}, unused, use_cache);
}

Tensor Gpt::generate(const Tensor& prompt, int64_t new_tokens, const SamplingOptions& sampling, engine::Generator& gen,
                     bool use_cache) {
  ENGINE_CHECK(prompt.dim() == 2 && prompt.size(1) > 0, "Gpt::generate: prompt must be (B, T0) with T0 > 0, got ",
               prompt.describe());
  ENGINE_CHECK(new_tokens >= 0, "Gpt::generate: new_tokens must be >= 0, got ", new_tokens);
  ENGINE_CHECK(!is_training(), "Gpt::generate: call eval() first");
  engine::NoGradGuard no_grad;
  // logits (B, T, V) -> the next token of each row from the last position, (B, 1).
  auto pick = [&](const Tensor& logits) { return next_tokens(logits.select(1, logits.size(1) - 1), sampling, gen); };
  std::vector<bool> stopped(size_t(prompt.size(0)), false);
  // Whether every row has now produced the stop token.
  auto all_stopped = [&](const Tensor& next) {
    if (!sampling.stop_token) return false;
    const std::vector<int64_t> ids = next.to(engine::Device::cpu()).to_vector<int64_t>();
    for (size_t b = 0; b < ids.size(); ++b) stopped[b] = stopped[b] || ids[b] == *sampling.stop_token;
    return std::all_of(stopped.begin(), stopped.end(), [](bool s) { return s; });
  };
  Tensor tokens = prompt;
  if (new_tokens == 0) return tokens;
  if (!use_cache) {
    engine::Generator unused(0);
    for (int64_t step = 0; step < new_tokens; ++step) {
      const Tensor next = pick(forward(tokens, unused));
      tokens = append_column(tokens, next);
      if (all_stopped(next)) break;
    }
    return tokens;
  }
  // The last generated token is never fed back, so the cache needs T0 + new_tokens - 1 rows.
  KvCache cache = make_cache(int64_t(engine::checked_add(uint64_t(prompt.size(1)), uint64_t(new_tokens - 1),
                                                         "Gpt::generate: prompt plus new tokens")));
  Tensor next = pick(forward_cached(prompt, cache));
  tokens = append_column(tokens, next);
  for (int64_t step = 1; step < new_tokens && !all_stopped(next); ++step) {
    next = pick(forward_cached(next, cache));
    tokens = append_column(tokens, next);
  }
  return tokens;
}

}  // namespace models
