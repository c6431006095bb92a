// A GPT-2-style decoder language model (Radford et al. 2019; Hugging Face's GPT2LMHeadModel):
// token embedding (+ learned positions when the PE is "ape"), `layers` pre-LN causal blocks, a
// final LayerNorm and an output head tied to the token embedding. Parameter names follow Hugging
// Face (wte, wpe, h.N.*, ln_f) so that checkpoints map one to one.
//
//   B = batch, T = time, C = channels, V = vocabulary
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/module.h"
#include "engine/module_list.h"
#include "engine/rng.h"
#include "models/layers.h"
#include "models/position_encoding.h"
#include "models/sampling.h"
#include "models/transformer_block.h"

namespace models {

struct GptConfig {
  int64_t vocab_size = 50257;
  int64_t context = 1024;      // rows of the learned position table (n_positions)
  // "ape": the rows of wpe that training uses (0 = all `context`). Evaluating a longer sequence
  // resizes these rows to its length by linear interpolation (docs/method.md#baselines).
  int64_t ape_train_length = 0;
  int64_t layers = 12;
  int64_t channels = 768;
  int64_t heads = 12;
  int64_t mlp_ratio = 4;
  double embedding_dropout = 0.1;
  double residual_dropout = 0.1;
  double attention_dropout = 0.1;  // on the attention probabilities (attn_pdrop)
  double layer_norm_eps = 1e-5;
  double init_std = 0.02;
  std::string position_encoding = "ape";  // "ape" owns wpe; any other name comes from a PositionEncoding
  nlohmann::json position_encoding_options = nlohmann::json::object();  // see models/pe/factory.h
  engine::Dtype dtype = engine::Dtype::f32;
};

class Gpt : public engine::Module {
 public:
  // `pe` supplies the position encoding for every name but "ape" (may be null for "nope").
  Gpt(const GptConfig& config, engine::Generator& init_gen, std::shared_ptr<PositionEncoding> pe = nullptr);

  // tokens: (B, T) i64 -> logits (B, T, V). `positions` default to 0..T-1; the PE reads them on
  // the host, so pass them on the CPU (a device copy is read back). `dropout_gen` draws the dropout
  // masks in training mode.
  Tensor forward(const Tensor& tokens, engine::Generator& dropout_gen, const Tensor& positions = Tensor());

  // The training loss: the mean cross-entropy of forward(tokens)'s logits against targets (B, T)
  // i64, positions whose target is ignore_index left out. The logits are never handed out, so the
  // fused classifier (ops::cross_entropy_consuming) writes their gradient over them: the step keeps
  // one (B, T, V) buffer where forward() followed by ops::cross_entropy keeps two. The same loss
  // and gradients as that pair, bit for bit when the loss is back-propagated with gradient 1.
  Tensor loss(const Tensor& tokens, const Tensor& targets, engine::Generator& dropout_gen,
              int64_t ignore_index = -100, const Tensor& positions = Tensor());

  // Incremental decoding: tokens (B, T_new) sit at positions cache.length.. and attend to every
  // cached token; returns their logits (B, T_new, V) and appends their keys and values to `cache`.
  // Evaluation mode, no autograd (it installs a NoGradGuard). Equals the last T_new rows of
  // forward() on the whole sequence.
  Tensor forward_cached(const Tensor& tokens, KvCache& cache);

  // Greedy decoding: appends `new_tokens` argmax tokens to prompt (B, T0) i64 and returns
  // (B, T0 + new_tokens). With `use_cache` each step feeds only the newest token through the
  // KV cache; without it each step recomputes the whole sequence (the reference it must equal).
  Tensor generate(const Tensor& prompt, int64_t new_tokens, bool use_cache = true);
  // Decoding by `sampling` (greedy, or temperature and top-k sampling drawing from `gen`): appends
  // up to `new_tokens` tokens, fewer when every row has produced sampling.stop_token (rows that
  // stopped earlier keep going until then), and returns (B, T0 + generated).
  Tensor generate(const Tensor& prompt, int64_t new_tokens, const SamplingOptions& sampling, engine::Generator& gen,
                  bool use_cache = true);

  // A cache sized for `capacity` tokens of this model. "ape": a decode reaching past the trained
  // rows indexes those rows resized to `ape_length` (>= capacity) by linear interpolation, once
  // per cache, as evaluation at that length does (docs/method.md#long-context-question-answering); 0 keeps the trained rows.
  KvCache make_cache(int64_t capacity, int64_t ape_length = 0) const;

  const GptConfig& config() const { return config_; }

 private:
  // "ape": the rows of wpe that training uses.
  int64_t ape_train_length() const { return config_.ape_train_length > 0 ? config_.ape_train_length : config_.context; }
  // "ape": the (T, C) learned positions of a T-token forward from position 0: rows of wpe, or in
  // evaluation beyond ape_train_length() those rows resized to T.
  Tensor learned_positions(int64_t T) const;
  // Token embeddings of tokens (B, T) + `learned` (T, C) when defined + the PE's input vector at
  // position_ids (T), then the embedding dropout.
  Tensor embed(const Tensor& tokens, const Tensor& learned, const Tensor& position_ids, engine::Generator& dropout_gen);
  // The last block's pending residual add fused with the final LayerNorm, and the tied head:
  // (B, T, C) -> (B, T, V).
  Tensor head(const PendingResidual& h) const;

  GptConfig config_;
  std::shared_ptr<Embedding> wte_, wpe_;
  std::shared_ptr<engine::ModuleList<TransformerBlock>> blocks_;  // h
  std::shared_ptr<LayerNorm> ln_f_;
  std::shared_ptr<PositionEncoding> pe_;
};

}  // namespace models
