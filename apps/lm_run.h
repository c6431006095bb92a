// What train_lm and eval_lm share: the run configuration (a flat JSON object), building the GPT
// (with SeqPE when the run asks for it) from it, and token perplexity by docs/method.md#language-modelling's
// protocol.
//
//   B = batch, T = time, V = vocabulary
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/token_file.h"
#include "engine/rng.h"
#include "models/gpt.h"
#include "seqpe/seqpe_position_encoding.h"

namespace apps {

// Every key a run config may have, with its default. Unknown keys are refused by merge_config.
nlohmann::json default_run_config();
// `base` with `overrides` applied key by key; throws naming an unknown key. "seqpe" (the SeqPE
// options) is merged field by field (a JSON merge patch); the flat shorthands seqpe_max_position,
// seqpe_layers, seqpe_shift_blocks, seqpe_contrastive_weight and seqpe_transfer_weight each set one
// of its fields.
nlohmann::json merge_config(const nlohmann::json& base, const nlohmann::json& overrides);
// "key=value": the value parsed as JSON when it is JSON, else kept as a string.
std::pair<std::string, nlohmann::json> parse_assignment(const std::string& assignment);

// A model as a run config describes it. `seqpe` is set for "pe": "seqpe".
struct LanguageModel {
  std::shared_ptr<seqpe::SeqPe> seqpe;
  std::unique_ptr<models::Gpt> gpt;
};
// For "pe": "seqpe", position_encoding_options holds the run's "seqpe" options written out in full.
models::GptConfig gpt_config(const nlohmann::json& run, int64_t vocab_size);
// The fields of gpt_config(run, vocab_size) that the run config fixes (for "seqpe", the options its
// "seqpe" object sets), as a GptConfig JSON: what a model.json's "model" section must agree with.
nlohmann::json stated_gpt_fields(const nlohmann::json& run, int64_t vocab_size);
LanguageModel build_model(const nlohmann::json& run, int64_t vocab_size, engine::Generator& init_gen);
// The model `config` describes; SeqPE's residual dropout is seeded from the run's `seed`.
LanguageModel build_model(const models::GptConfig& config, uint64_t seed, engine::Generator& init_gen);

struct Perplexity {
  double nll = 0;      // summed over the scored tokens
  int64_t tokens = 0;  // tokens scored
  // The same sums per position bucket inside the chunks: bucket b holds the predictions at
  // positions [b·w, (b+1)·w) of their chunk, w = token_perplexity's bucket_width. (ceil(length / w))
  std::vector<double> bucket_nll;
  std::vector<int64_t> bucket_tokens;
  double token_ppl() const;
};

// Token perplexity of `model` (evaluation mode, on its parameters' device) on `tokens`
// (docs/method.md#language-modelling): the stream's predictions (input i, target i + 1) cut into non-overlapping chunks of `length`,
// the last partial chunk kept, each scored alone at positions 0..length-1 with batch 1.
// `max_tokens` > 0 scores only the first chunks covering that many predictions (for quick validation).
// `bucket_width` > 0 also sums the loss per bucket of that many positions (0: one bucket of `length`),
// which shows where inside a chunk longer than the training length the loss starts to grow.
Perplexity token_perplexity(models::Gpt& model, const data::TokenFile& tokens, int64_t length,
                            int64_t max_tokens = 0, int64_t bucket_width = 0);

}  // namespace apps

namespace apps {

// A model read back from a checkpoint "<dir>/<name>.ckpt.safetensors" (or the weights exported from
// one, "<dir>/<name>.weights.safetensors") and the "<dir>/<name>.model.json" beside it (run config,
// vocabulary size, tokenizer directory), in evaluation mode. The run config is merged over
// `defaults`, which must know each of its keys: default_run_config() for train_lm's checkpoints; a
// fine-tuning app's defaults (a superset, such as apps::default_qa_config()) to read its checkpoints
// too. The model is the one the model.json's "model" section describes when it has one
// (seqpe::gpt_config_from_model_json: it must agree with what the run config states), else the one
// the language model's keys of the run config describe.
// The model is moved to `device` (checkpoints are device-independent).
struct TrainedModel {
  nlohmann::json run;         // the run config it was trained with
  int64_t vocab_size = 0;
  std::string tokenizer_dir;  // holds vocab.json and merges.txt
  int64_t step = 0;           // optimizer steps taken
  LanguageModel model;
};
TrainedModel load_trained_model(const std::string& checkpoint,
                                const nlohmann::json& defaults = default_run_config(),
                                engine::Device device = engine::Device::cpu());

}  // namespace apps

namespace apps {

// A trained model's file names: "<name>.ckpt.safetensors", the checkpoint the trainer writes, and
// "<name>.weights.safetensors", its weights alone as export_weights writes them (bf16 by default).
// Both have the model.json "<name>.model.json" beside them, and both load with load_trained_model.
inline constexpr const char* kCheckpointSuffix = ".ckpt.safetensors";
inline constexpr const char* kExportedWeightsSuffix = ".weights.safetensors";

// The model.json that train_lm and finetune_qa write beside a checkpoint
// "<dir>/<name>.ckpt.safetensors" (and export_weights beside the weights it writes):
// "<dir>/<name>.model.json", with the run config ("config"), the vocabulary size ("vocab_size") and
// the tokenizer directory ("tokenizer").
nlohmann::json read_model_json(const std::string& checkpoint);
// Where that model.json is: "<dir>/<name>.model.json".
std::string model_json_path(const std::string& checkpoint);

}  // namespace apps
