#include "apps/lm_run.h"

#include <algorithm>
#include <cmath>
#include <span>
#include <vector>

#include "engine/autograd.h"
#include "engine/error.h"
#include "models/model_config.h"
#include "ops/cross_entropy.h"

namespace lm {

nlohmann::json default_run_config() {
  return {
      {"corpus", "data/corpora/kjv"}, {"vocab_size", 2048}, {"out", "runs/lm"},
      {"pe", "seqpe"}, {"layers", 4}, {"channels", 128}, {"heads", 4}, {"context", 128}, {"dropout", 0.1},
      {"steps", 300}, {"stop_after", 0}, {"batch", 8}, {"lr", 1e-3}, {"weight_decay", 0.0}, {"warmup", 30}, {"clip", 5.0},
      {"seed", 10086}, {"log_every", 10}, {"eval_every", 100}, {"valid_tokens", 0},
      // SeqPE (SEQPE_SPEC.md §9, scaled to the model): positions [0, seqpe_max_position), the
      // encoder as wide as the model with as many heads, `seqpe_layers` blocks; P shifted blocks.
      {"seqpe_max_position", 20000}, {"seqpe_layers", 2}, {"seqpe_shift_blocks", 16},
      {"seqpe_contrastive_weight", 0.1}, {"seqpe_transfer_weight", 0.1},
  };
}

nlohmann::json merge_config(const nlohmann::json& base, const nlohmann::json& overrides) {
  ENGINE_CHECK(overrides.is_object(), "run config: expected a JSON object, got ", overrides.dump());
  nlohmann::json merged = base;
  for (const auto& [key, value] : overrides.items()) {
    ENGINE_CHECK(base.contains(key), "run config: unknown key '", key, "'");
    ENGINE_CHECK(std::string(base[key].type_name()) == value.type_name() ||
                     (base[key].is_number() && value.is_number()),
                 "run config: '", key, "' must be a ", base[key].type_name(), ", got ", value.dump());
    merged[key] = value;
  }
  return merged;
}

std::pair<std::string, nlohmann::json> parse_assignment(const std::string& assignment) {
  const size_t eq = assignment.find('=');
  ENGINE_CHECK(eq != std::string::npos && eq > 0, "expected key=value, got '", assignment, "'");
  const std::string value = assignment.substr(eq + 1);
  nlohmann::json parsed = nlohmann::json::parse(value, nullptr, false);
  return {assignment.substr(0, eq), parsed.is_discarded() ? nlohmann::json(value) : parsed};
}

models::GptConfig gpt_config(const nlohmann::json& run, int64_t vocab_size) {
  models::GptConfig c;
  c.vocab_size = vocab_size;
  c.context = run.at("context").get<int64_t>();
  c.layers = run.at("layers").get<int64_t>();
  c.channels = run.at("channels").get<int64_t>();
  c.heads = run.at("heads").get<int64_t>();
  c.embedding_dropout = c.residual_dropout = c.attention_dropout = run.at("dropout").get<double>();
  c.position_encoding = run.at("pe").get<std::string>();
  models::validate_gpt_config(c);
  return c;
}

seqpe::SeqPeConfig seqpe_config(const nlohmann::json& run) {
  seqpe::SeqPeConfig c = seqpe::SeqPeConfig::text_defaults();
  const int64_t width = run.at("channels").get<int64_t>(), heads = run.at("heads").get<int64_t>();
  c.pe_max_position = run.at("seqpe_max_position").get<int64_t>();
  ENGINE_CHECK(c.pe_max_position > run.at("context").get<int64_t>(), "run config: seqpe_max_position (",
               c.pe_max_position, ") must exceed the context (", run.at("context").get<int64_t>(), ")");
  c.encoder.max_digits = int64_t(std::to_string(c.pe_max_position - 1).size());
  c.encoder.channels = width;
  c.encoder.heads = heads;
  c.encoder.layers = run.at("seqpe_layers").get<int64_t>();
  c.encoder.out_features = width;
  c.encoder.residual_dropout = run.at("dropout").get<double>();
  c.model_width = width;
  c.model_heads = heads;
  c.model_layers = run.at("layers").get<int64_t>();
  c.transfer_heads = heads;
  c.contrastive_weight = run.at("seqpe_contrastive_weight").get<double>();
  c.transfer_weight = run.at("seqpe_transfer_weight").get<double>();
  c.dropout_seed = run.at("seed").get<uint64_t>() + 4;
  return c;
}

LanguageModel build_model(const nlohmann::json& run, int64_t vocab_size, engine::Generator& init_gen) {
  const models::GptConfig config = gpt_config(run, vocab_size);
  LanguageModel model;
  std::shared_ptr<models::PositionEncoding> pe;
  if (config.position_encoding == "seqpe") {
    model.seqpe = std::make_shared<seqpe::SeqPe>(seqpe_config(run), init_gen);
    pe = model.seqpe;
  } else {
    pe = models::make_position_encoding(config, init_gen);
  }
  model.gpt = std::make_unique<models::Gpt>(config, init_gen, pe);
  return model;
}

double Perplexity::token_ppl() const { return std::exp(nll / double(tokens)); }

Perplexity token_perplexity(models::Gpt& model, const data::TokenFile& tokens, int64_t length, int64_t max_tokens) {
  ENGINE_CHECK(length > 0, "token_perplexity: length must be positive, got ", length);
  engine::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  engine::Generator unused_dropout(0);
  int64_t predictions = tokens.size() - 1;
  if (max_tokens > 0 && max_tokens < predictions) predictions = max_tokens;
  Perplexity result;
  std::vector<int64_t> window(size_t(length + 1));
  for (int64_t start = 0; start < predictions; start += length) {
    const int64_t T = std::min(length, predictions - start);
    std::span<int64_t> chunk(window.data(), size_t(T + 1));
    tokens.read(start, chunk);
    const std::vector<int64_t> inputs(chunk.begin(), chunk.end() - 1), targets(chunk.begin() + 1, chunk.end());
    const engine::Tensor logits = model.forward(engine::Tensor::from_indices(inputs, {1, T}), unused_dropout);
    const double mean = ops::cross_entropy(logits, engine::Tensor::from_indices(targets, {1, T})).item();
    result.nll += mean * double(T);
    result.tokens += T;
  }
  model.train(was_training);
  return result;
}

}  // namespace lm
