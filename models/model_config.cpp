// GPT and ViT configs to and from JSON, with their validation (models/model_config.h).
#include "models/model_config.h"

#include <cmath>

#include "engine/safetensors.h"
#include "models/gpt2_checkpoint.h"
#include "models/json_config.h"

namespace models {

namespace {

const std::vector<std::string> gpt_position_encodings = {"ape", "sin", "rope", "alibi", "nope", "seqpe"};
const std::vector<std::string> vit_position_encodings = {"ape", "sin", "rope", "rope2d", "rope_mixed", "nope", "seqpe"};

void require_heads_divide(const ConfigReader& reader, const std::string& width_field, int64_t width, int64_t heads) {
  if (width % heads != 0)
    reader.fail("heads", "must divide '" + width_field + "' (" + std::to_string(width) + " % " +
                             std::to_string(heads) + " != 0)");
}

GptConfig read_gpt(ConfigReader& r) {
  GptConfig c;
  c.vocab_size = r.integer("vocab_size", c.vocab_size, 1);
  c.context = r.integer("context", c.context, 1);
  c.ape_train_length = r.integer("ape_train_length", c.ape_train_length, 0);
  c.layers = r.integer("layers", c.layers, 1);
  c.channels = r.integer("channels", c.channels, 1);
  c.heads = r.integer("heads", c.heads, 1);
  c.mlp_ratio = r.integer("mlp_ratio", c.mlp_ratio, 1);
  c.embedding_dropout = r.real("embedding_dropout", c.embedding_dropout, 0.0, 1.0);
  c.residual_dropout = r.real("residual_dropout", c.residual_dropout, 0.0, 1.0);
  c.attention_dropout = r.real("attention_dropout", c.attention_dropout, 0.0, 1.0);
  c.layer_norm_eps = r.positive("layer_norm_eps", c.layer_norm_eps);
  c.init_std = r.positive("init_std", c.init_std);
  c.position_encoding = r.choice("position_encoding", c.position_encoding, gpt_position_encodings);
  c.position_encoding_options = r.object("position_encoding_options");
  c.dtype = r.dtype("dtype", c.dtype);
  r.finish();
  require_heads_divide(r, "channels", c.channels, c.heads);
  if (c.ape_train_length > c.context)
    r.fail("ape_train_length", "must not exceed 'context' (" + std::to_string(c.ape_train_length) + " > " +
                                   std::to_string(c.context) + ")");
  return c;
}

VitConfig read_vit(ConfigReader& r) {
  VitConfig c;
  c.image_size = r.integer("image_size", c.image_size, 1);
  c.patch = r.integer("patch", c.patch, 1);
  c.in_channels = r.integer("in_channels", c.in_channels, 1);
  c.width = r.integer("width", c.width, 1);
  c.depth = r.integer("depth", c.depth, 1);
  c.heads = r.integer("heads", c.heads, 1);
  c.mlp_ratio = r.integer("mlp_ratio", c.mlp_ratio, 1);
  c.layer_norm_eps = r.positive("layer_norm_eps", c.layer_norm_eps);
  c.num_classes = r.integer("num_classes", c.num_classes, 1);
  c.dropout = r.real("dropout", c.dropout, 0.0, 1.0);
  c.attention_dropout = r.real("attention_dropout", c.attention_dropout, 0.0, 1.0);
  c.init_std = r.positive("init_std", c.init_std);
  c.position_encoding = r.choice("position_encoding", c.position_encoding, vit_position_encodings);
  c.position_encoding_options = r.object("position_encoding_options");
  c.dtype = r.dtype("dtype", c.dtype);
  r.finish();
  require_heads_divide(r, "width", c.width, c.heads);
  if (c.image_size % c.patch != 0)
    r.fail("patch", "must divide 'image_size' (" + std::to_string(c.image_size) + " % " + std::to_string(c.patch) +
                        " != 0)");
  return c;
}

}  // namespace

GptConfig gpt_config_from_json(const nlohmann::json& json) {
  ConfigReader reader(json, "GPT config");
  return read_gpt(reader);
}

nlohmann::json gpt_config_to_json(const GptConfig& c) {
  return {{"vocab_size", c.vocab_size},
          {"context", c.context},
          {"ape_train_length", c.ape_train_length},
          {"layers", c.layers},
          {"channels", c.channels},
          {"heads", c.heads},
          {"mlp_ratio", c.mlp_ratio},
          {"embedding_dropout", c.embedding_dropout},
          {"residual_dropout", c.residual_dropout},
          {"attention_dropout", c.attention_dropout},
          {"layer_norm_eps", c.layer_norm_eps},
          {"init_std", c.init_std},
          {"position_encoding", c.position_encoding},
          {"position_encoding_options", c.position_encoding_options},
          {"dtype", engine::dtype_name(c.dtype)}};
}

// Round trip through JSON: one set of checks for configs built in C++ and read from files.
void validate_gpt_config(const GptConfig& config) { gpt_config_from_json(gpt_config_to_json(config)); }

VitConfig vit_config_from_json(const nlohmann::json& json) {
  ConfigReader reader(json, "ViT config");
  return read_vit(reader);
}

nlohmann::json vit_config_to_json(const VitConfig& c) {
  return {{"image_size", c.image_size},
          {"patch", c.patch},
          {"in_channels", c.in_channels},
          {"width", c.width},
          {"depth", c.depth},
          {"heads", c.heads},
          {"mlp_ratio", c.mlp_ratio},
          {"layer_norm_eps", c.layer_norm_eps},
          {"num_classes", c.num_classes},
          {"dropout", c.dropout},
          {"attention_dropout", c.attention_dropout},
          {"init_std", c.init_std},
          {"position_encoding", c.position_encoding},
          {"position_encoding_options", c.position_encoding_options},
          {"dtype", engine::dtype_name(c.dtype)}};
}

void validate_vit_config(const VitConfig& config) { vit_config_from_json(vit_config_to_json(config)); }

// A GPT's sinusoidal table starts the size of its token embeddings: elements of RMS init_std (the
// table's own RMS is 1/sqrt(2)), not amplitude 1 over embeddings of std 0.02 (models/pe/sinusoidal.h).
std::shared_ptr<PositionEncoding> make_position_encoding(const GptConfig& config, engine::Generator& init_gen) {
  pe::PeDims dims{config.channels, config.heads, config.layers, config.dtype};
  dims.sinusoidal_scale = config.init_std * std::sqrt(2.0);
  return pe::make_position_encoding(config.position_encoding, config.position_encoding_options, dims, init_gen);
}

std::shared_ptr<PositionEncoding> make_position_encoding(const VitConfig& config, engine::Generator& init_gen) {
  return pe::make_position_encoding(config.position_encoding, config.position_encoding_options,
                                pe::PeDims{config.width, config.heads, config.depth, config.dtype}, init_gen);
}

void check_position_encoding_matches(const std::string& model, const std::string& config_name,
                                     const PositionEncoding* pe) {
  if (config_name == "ape" || config_name == "nope") {
    ENGINE_CHECK(!pe, model, ": config field 'position_encoding' is \"", config_name,
                 "\" but a position encoding '", pe->name(), "' was passed; pass none or change the config");
    return;
  }
  ENGINE_CHECK(pe, model, ": config field 'position_encoding' is \"", config_name,
               "\" but no position encoding was passed; build it with models::make_position_encoding(config, gen)");
  ENGINE_CHECK(config_name == "seqpe" || pe->name() == config_name, model, ": config field 'position_encoding' is \"",
               config_name, "\" but the position encoding passed is '", pe->name(), "'");
}

void save_config_beside(const std::string& weights_path, const nlohmann::json& config) {
  write_json_file(config_path_beside(weights_path), config);
}

nlohmann::json load_config_beside(const std::string& weights_path) {
  return read_json_file(config_path_beside(weights_path));
}

void save_gpt(const Gpt& model, const std::string& weights_path) {
  save_gpt2_safetensors(model, weights_path);
  save_config_beside(weights_path, gpt_config_to_json(model.config()));
}

std::unique_ptr<Gpt> load_gpt(const std::string& weights_path, engine::Generator& init_gen) {
  const GptConfig config = gpt_config_from_json(load_config_beside(weights_path));
  auto model = std::make_unique<Gpt>(config, init_gen, make_position_encoding(config, init_gen));
  load_gpt2_safetensors(*model, weights_path);
  return model;
}

void save_vit(const Vit& model, const std::string& weights_path) {
  engine::save_safetensors(weights_path, model.state_dict(), {{"format", "pt"}});
  save_config_beside(weights_path, vit_config_to_json(model.config()));
}

std::unique_ptr<Vit> load_vit(const std::string& weights_path, engine::Generator& init_gen) {
  const VitConfig config = vit_config_from_json(load_config_beside(weights_path));
  auto model = std::make_unique<Vit>(config, init_gen, make_position_encoding(config, init_gen));
  model->load_state_dict(engine::load_safetensors(weights_path).tensors);
  return model;
}

}  // namespace models
