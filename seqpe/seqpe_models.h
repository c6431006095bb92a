// Models with SeqPE as files and from configs: models/model_config.h builds and loads the baseline
// PEs only (models sits below seqpe/); these also build "seqpe" from the model config's
// position_encoding_options (seqpe_options.h), so a SeqPE model.json alone rebuilds its SeqPE.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "models/gpt.h"
#include "models/vit.h"
#include "seqpe/seqpe_options.h"

namespace seqpe {

// The PE the config names: a SeqPe for "seqpe" (its residual dropout seeded with `dropout_seed`),
// the baseline of models::make_position_encoding otherwise (null for "ape" and "nope").
std::shared_ptr<models::PositionEncoding> make_position_encoding(const models::GptConfig& config,
                                                                 engine::Generator& init_gen,
                                                                 uint64_t dropout_seed = 0);
std::shared_ptr<models::PositionEncoding> make_position_encoding(const models::VitConfig& config,
                                                                 engine::Generator& init_gen,
                                                                 uint64_t dropout_seed = 0);

// models::load_gpt / load_vit for any PE, SeqPE included: the config from the model.json beside
// the weights, the model it describes, then the weights. Save with models::save_gpt / save_vit.
std::unique_ptr<models::Gpt> load_gpt(const std::string& weights_path, engine::Generator& init_gen);
std::unique_ptr<models::Vit> load_vit(const std::string& weights_path, engine::Generator& init_gen);

// The model a trained GPT's model.json describes, from its two sections: "model", the GptConfig the
// model was built from (models::gpt_config_to_json), which is the source of truth, so that editing
// it takes effect; and `stated`, what the run's "config" section fixes, as a GptConfig JSON holding
// only those fields (for "seqpe", the position_encoding_options the run sets). A field that both give
// with different values is refused with an error naming `file`, the field and both values; a field
// that only the model section gives (init_std, a SeqPE option the run left to its default) may be
// edited there alone. SeqPE's options are written out in full (with_full_seqpe_options).
models::GptConfig gpt_config_from_model_json(const nlohmann::json& model_section, const nlohmann::json& stated,
                                             const std::string& file);

}  // namespace seqpe
