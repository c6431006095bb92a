// The language-model run configuration and its defaults, building the GPT (with SeqPE) from it, and
// token perplexity (apps/lm_run.h).
#include "apps/lm_run.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <span>
#include <vector>

#include "engine/autograd.h"
#include "engine/checkpoint.h"
#include "apps/option_values.h"
#include "engine/error.h"
#include "engine/json_read.h"
#include "models/model_config.h"
#include "ops/cross_entropy.h"
#include "seqpe/seqpe_models.h"

namespace apps {

nlohmann::json default_run_config() {
  return {
      {"corpus", "data/corpora/kjv"}, {"vocab_size", 2048}, {"out", "runs/lm"},
      {"pe", "seqpe"}, {"layers", 4}, {"channels", 128}, {"heads", 4}, {"context", 128}, {"dropout", 0.1},
      {"steps", 300}, {"stop_after", 0}, {"batch", 8}, {"lr", 1e-3}, {"weight_decay", 0.0}, {"warmup", 30}, {"clip", 5.0},
      {"seed", 10086}, {"log_every", 10}, {"eval_every", 100}, {"valid_tokens", 0},
      // Share of training blocks rewritten into synthetic copying sequences (data/copy_tasks.h), a
      // deviation from the paper that teaches small models to copy from their context; 0 = none.
      {"copy_mix", 0.0},
      // Which copying tasks, drawn uniformly per rewritten block: a comma-separated list of
      // repeated_span, key_value and random_repeats (data/copy_tasks.h).
      {"copy_tasks", "repeated_span,key_value"},
      {"flush_denormal", true},  // engine::set_flush_denormal: denormal arithmetic is slow (engine/denormals.h)
      // The trainer's (apps/train/trainer.h): where it runs and in what precision (apps/train/device_setup.h),
      // which activations the backward recomputes (models/recompute.h), micro-batches per step, periodic
      // checkpoints, what a non-finite step does.
      {"device", "cpu"}, {"tf32", true}, {"precision", "fp32"}, {"recompute", "none"}, {"accumulation", 1},
      {"checkpoint_every", 0},
      {"keep_checkpoints", 3},
      {"skip_nonfinite", false}, {"zero1", false},
      {"allreduce_dtype", "fp32"},  // the data-parallel gradient all-reduce in fp32 or bf16
      // SeqPE's options (seqpe/seqpe_options.h): the model config's position_encoding_options for
      // "pe": "seqpe". Absent fields take the reference's text values (docs/method.md#language-modelling), sized to the model (the encoder
      // as wide as the model with as many heads).
      {"seqpe", nlohmann::json::object()},
  };
}

namespace {

// Shorthands of earlier flat run configs, kept as overrides of one field of the "seqpe" options.
const std::map<std::string, std::string> seqpe_shorthands = {
    {"seqpe_max_position", "/pe_max_position"},
    {"seqpe_layers", "/encoder/layers"},
    {"seqpe_shift_blocks", "/random_shift/blocks"},
    {"seqpe_contrastive_weight", "/contrastive/weight"},
    {"seqpe_transfer_weight", "/transfer/weight"},
};

}  // namespace

nlohmann::json merge_config(const nlohmann::json& base, const nlohmann::json& overrides) {
  ENGINE_CHECK(overrides.is_object(), "run config: expected a JSON object, got ", overrides.dump());
  nlohmann::json merged = base;
  for (const auto& [key, value] : overrides.items()) {
    if (auto shorthand = seqpe_shorthands.find(key); shorthand != seqpe_shorthands.end()) {
      merged["seqpe"][nlohmann::json::json_pointer(shorthand->second)] = value;
      continue;
    }
    ENGINE_CHECK(base.contains(key), "run config: unknown key '", key, "'");
    apps::check_override_type(key, base[key], value);
    if (key == "seqpe") merged[key].merge_patch(value);  // field by field, as the other keys
    else merged[key] = value;
  }
  return merged;
}

std::pair<std::string, nlohmann::json> parse_assignment(const std::string& assignment) {
  const size_t eq = assignment.find('=');
  ENGINE_CHECK(eq != std::string::npos && eq > 0, "expected key=value, got '", assignment, "'");
  const std::string value = assignment.substr(eq + 1);
  return {assignment.substr(0, eq), apps::assignment_value(assignment.substr(0, eq), value)};
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
  if (c.position_encoding == "seqpe") {
    c.position_encoding_options = run.at("seqpe");
    c = seqpe::with_full_seqpe_options(c);
  }
  return c;
}

nlohmann::json stated_gpt_fields(const nlohmann::json& run, int64_t vocab_size) {
  const double dropout = run.at("dropout").get<double>();
  nlohmann::json stated = {{"vocab_size", vocab_size},          {"context", run.at("context")},
                           {"layers", run.at("layers")},        {"channels", run.at("channels")},
                           {"heads", run.at("heads")},          {"embedding_dropout", dropout},
                           {"residual_dropout", dropout},       {"attention_dropout", dropout},
                           {"position_encoding", run.at("pe")}};
  if (run.at("pe") == "seqpe") stated["position_encoding_options"] = run.at("seqpe");
  return stated;
}

LanguageModel build_model(const nlohmann::json& run, int64_t vocab_size, engine::Generator& init_gen) {
  return build_model(gpt_config(run, vocab_size), run.at("seed").get<uint64_t>(), init_gen);
}

LanguageModel build_model(const models::GptConfig& config, uint64_t seed, engine::Generator& init_gen) {
  LanguageModel model;
  const auto pe = seqpe::make_position_encoding(config, init_gen, seed + 4);
  model.seqpe = std::dynamic_pointer_cast<seqpe::SeqPe>(pe);
  model.gpt = std::make_unique<models::Gpt>(config, init_gen, pe);
  return model;
}

double Perplexity::token_ppl() const {
  ENGINE_CHECK(tokens > 0, "perplexity of no tokens: the split or example set scored is empty");
  return std::exp(nll / double(tokens));
}

Perplexity token_perplexity(models::Gpt& model, const data::TokenFile& tokens, int64_t length, int64_t max_tokens,
                            int64_t bucket_width) {
  ENGINE_CHECK(length > 0, "token_perplexity: length must be positive, got ", length);
  ENGINE_CHECK(bucket_width >= 0, "token_perplexity: bucket_width must be 0 or positive, got ", bucket_width);
  if (bucket_width == 0) bucket_width = length;
  engine::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  engine::Generator unused_dropout(0);
  const engine::Device device = model.parameters().front().device();
  int64_t predictions = tokens.size() - 1;
  if (max_tokens > 0 && max_tokens < predictions) predictions = max_tokens;
  ENGINE_CHECK(predictions > 0, "token_perplexity: ", tokens.path().string(), " has ", tokens.size(),
               " tokens, no prediction to score: the split is empty");
  Perplexity result;
  const size_t buckets = size_t((length + bucket_width - 1) / bucket_width);
  result.bucket_nll.assign(buckets, 0.0);
  result.bucket_tokens.assign(buckets, 0);
  std::vector<int64_t> window(size_t(length + 1));
  for (int64_t start = 0; start < predictions; start += length) {
    const int64_t T = std::min(length, predictions - start);
    std::span<int64_t> chunk(window.data(), size_t(T + 1));
    tokens.read(start, chunk);
    const std::vector<int64_t> inputs(chunk.begin(), chunk.end() - 1), targets(chunk.begin() + 1, chunk.end());
    const engine::Tensor logits =
        model.forward(engine::Tensor::from_indices(inputs, {1, T}).to(device), unused_dropout);
    // (1, T) losses, one per position, summed in f64
    const std::vector<double> losses =
        ops::cross_entropy(logits, engine::Tensor::from_indices(targets, {1, T}).to(device), -100, 0.0,
                           ops::Reduction::none)
            .to_vector<double>();
    for (int64_t t = 0; t < T; ++t) {
      const size_t bucket = size_t(t / bucket_width);
      result.nll += losses[size_t(t)];
      result.bucket_nll[bucket] += losses[size_t(t)];
      ++result.bucket_tokens[bucket];
    }
    result.tokens += T;
  }
  model.train(was_training);
  return result;
}

}  // namespace apps

namespace apps {

TrainedModel load_trained_model(const std::string& checkpoint, const nlohmann::json& defaults,
                                engine::Device device) {
  const nlohmann::json model_json = read_model_json(checkpoint);
  TrainedModel trained;
  try {
    trained.run = merge_config(defaults, model_json.at("config"));
  } catch (const engine::Error& error) {
    throw engine::Error("the model.json beside " + checkpoint + ": " + error.what());
  }
  trained.vocab_size = model_json.at("vocab_size").get<int64_t>();
  trained.tokenizer_dir = model_json.at("tokenizer").get<std::string>();
  models::GptConfig config = gpt_config(trained.run, trained.vocab_size);
  if (model_json.contains("model"))
    config = seqpe::gpt_config_from_model_json(model_json.at("model"),
                                               stated_gpt_fields(trained.run, trained.vocab_size),
                                               model_json_path(checkpoint));
  engine::Generator init_gen(0);  // overwritten by the checkpoint
  trained.model = build_model(config, trained.run.at("seed").get<uint64_t>(), init_gen);
  const engine::ModelWeights weights = engine::load_model_weights(checkpoint);
  trained.model.gpt->load_state_dict(weights.tensors);
  trained.model.gpt->to_(device);
  trained.model.gpt->eval();
  trained.step = weights.step;
  return trained;
}

}  // namespace apps

namespace apps {

std::string model_json_path(const std::string& checkpoint) {
  namespace fs = std::filesystem;
  const std::string name = fs::path(checkpoint).filename().string();
  for (const std::string suffix : {kCheckpointSuffix, kExportedWeightsSuffix})
    if (name.size() > suffix.size() && name.ends_with(suffix))
      return (fs::path(checkpoint).parent_path() / (name.substr(0, name.size() - suffix.size()) + ".model.json"))
          .string();
  throw engine::Error(engine::detail::concat("expected a *", kCheckpointSuffix, " checkpoint or *",
                                             kExportedWeightsSuffix, " weights, got ", checkpoint));
}

nlohmann::json read_model_json(const std::string& checkpoint) {
  const std::string json_path = model_json_path(checkpoint);
  ENGINE_CHECK(std::filesystem::exists(json_path), "cannot read ", json_path, ", the model.json written beside ",
               checkpoint);
  return engine::read_json_file(json_path);
}

}  // namespace apps
