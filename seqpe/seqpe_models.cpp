// Building SeqPE from a model config, and loading SeqPE GPTs and ViTs from model.json + weights
// (seqpe/seqpe_models.h).
#include "seqpe/seqpe_models.h"

#include "engine/error.h"
#include "engine/safetensors.h"
#include "models/gpt2_checkpoint.h"
#include "models/json_config.h"
#include "models/model_config.h"

namespace seqpe {

namespace {

template <class Config>
std::shared_ptr<models::PositionEncoding> make_pe(const Config& config, engine::Generator& init_gen,
                                                  uint64_t dropout_seed) {
  if (config.position_encoding != "seqpe") return models::make_position_encoding(config, init_gen);
  SeqPeConfig pe = seqpe_options(config).pe;
  pe.dropout_seed = dropout_seed;
  return std::make_shared<SeqPe>(pe, init_gen);
}

}  // namespace

std::shared_ptr<models::PositionEncoding> make_position_encoding(const models::GptConfig& config,
                                                                 engine::Generator& init_gen, uint64_t dropout_seed) {
  return make_pe(config, init_gen, dropout_seed);
}

std::shared_ptr<models::PositionEncoding> make_position_encoding(const models::VitConfig& config,
                                                                 engine::Generator& init_gen, uint64_t dropout_seed) {
  return make_pe(config, init_gen, dropout_seed);
}

models::GptConfig gpt_config_from_model_json(const nlohmann::json& model_section, const nlohmann::json& stated,
                                             const std::string& file) {
  models::GptConfig config;
  try {
    config = models::gpt_config_from_json(model_section);
    if (config.position_encoding == "seqpe") config = with_full_seqpe_options(config);
  } catch (const engine::Error& error) {
    throw engine::Error(file + ", section 'model': " + error.what());
  }
  if (auto difference = models::first_difference(stated, models::gpt_config_to_json(config)))
    throw engine::Error(file + ": the 'model' section has " + difference->path + " = " + difference->in_full.dump() +
                        " but the 'config' section gives " + difference->in_subset.dump() +
                        "; edit both sections to the same value");
  return config;
}

std::unique_ptr<models::Gpt> load_gpt(const std::string& weights_path, engine::Generator& init_gen) {
  const models::GptConfig config = models::gpt_config_from_json(models::load_config_beside(weights_path));
  auto model = std::make_unique<models::Gpt>(config, init_gen, seqpe::make_position_encoding(config, init_gen));
  models::load_gpt2_safetensors(*model, weights_path);
  return model;
}

std::unique_ptr<models::Vit> load_vit(const std::string& weights_path, engine::Generator& init_gen) {
  const models::VitConfig config = models::vit_config_from_json(models::load_config_beside(weights_path));
  auto model = std::make_unique<models::Vit>(config, init_gen, seqpe::make_position_encoding(config, init_gen));
  model->load_state_dict(engine::load_safetensors(weights_path).tensors);
  return model;
}

}  // namespace seqpe
