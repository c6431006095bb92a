// The model configs as JSON, as saved beside the weights ("model.safetensors" + "model.json").
//
// Field names are the C++ members' names (gpt.h GptConfig, vit.h VitConfig); absent fields take the
// defaults, unknown fields are refused, and every value is validated with an error that names the
// field and the value: "GPT config field 'heads' must divide 'channels' (768 % 10 != 0)".
// The position encoding is chosen by name ("position_encoding") with its options
// ("position_encoding_options", see models/pe/factory.h). GPT takes ape, sin, rope, alibi, nope and
// seqpe; ViT takes ape, sin, rope, rope2d, rope_mixed, nope and seqpe.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "models/gpt.h"
#include "models/pe/factory.h"
#include "models/vit.h"

namespace models {

GptConfig gpt_config_from_json(const nlohmann::json& json);
nlohmann::json gpt_config_to_json(const GptConfig& config);
// Throws for any field out of range or inconsistent with another (the checks of gpt_config_from_json).
void validate_gpt_config(const GptConfig& config);

VitConfig vit_config_from_json(const nlohmann::json& json);
nlohmann::json vit_config_to_json(const VitConfig& config);
void validate_vit_config(const VitConfig& config);

// The baseline PE the config names (null for "ape" and "nope"); "seqpe" is built by seqpe/.
std::shared_ptr<PositionEncoding> make_position_encoding(const GptConfig& config, engine::Generator& init_gen);
std::shared_ptr<PositionEncoding> make_position_encoding(const VitConfig& config, engine::Generator& init_gen);

// Checks that the PE handed to a model is the one its config names: none for "ape" and "nope", one
// whose name() matches otherwise (SeqPE's is not checked by name: seqpe/ owns it).
void check_position_encoding_matches(const std::string& model, const std::string& config_name,
                                     const PositionEncoding* pe);

// Writes `config` to config_path_beside(weights_path); reads it back from there.
void save_config_beside(const std::string& weights_path, const nlohmann::json& config);
nlohmann::json load_config_beside(const std::string& weights_path);

// A model as files: weights in safetensors (GPT in Hugging Face GPT-2 names and layout, ViT in its
// state_dict names) and the config beside them. Loading builds the model the config describes,
// with the baseline PEs only, and loads the weights into it. A SeqPE model is rebuilt by
// seqpe/seqpe_models.h (seqpe::load_gpt / load_vit) from the same files.
void save_gpt(const Gpt& model, const std::string& weights_path);
std::unique_ptr<Gpt> load_gpt(const std::string& weights_path, engine::Generator& init_gen);
void save_vit(const Vit& model, const std::string& weights_path);
std::unique_ptr<Vit> load_vit(const std::string& weights_path, engine::Generator& init_gen);

}  // namespace models
