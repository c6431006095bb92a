// Builds a position encoding by its config name (docs/method.md#baselines), with its options from JSON:
//   "ape"         learned absolute table owned by the model itself (GPT-2's wpe, ViT's pos_embed):
//                 returns null
//   "nope"        no positional signal: returns null
//   "sin"         {"base": 10000, "max_position": 20000,   sinusoidal table of max_position + 1 rows,
//                  "scale": PeDims::sinusoidal_scale}      times `scale`
//   "rope"        {"base": 10000}                          1-D RoPE, adjacent pairs
//   "rope2d"      {"base": 10000}                          axial 2-D RoPE (images)
//   "rope_mixed"  {"base": 10}                             RoPE-Mixed, learnable frequencies (images)
//   "alibi"       {"scaled_by_attention_scale": true}      the authors' bias-before-scale quirk
//   "seqpe"       built by seqpe/ and passed to the model; asking this factory for it is an error
// Unknown names and unknown or out-of-range options are errors naming the field and the value.
//
//   C = model width, H = heads, D = C / H head dim, L = layers
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "models/position_encoding.h"

namespace models::pe {

// What a PE needs to know of the model it goes into.
struct PeDims {
  int64_t channels = 0;  // C
  int64_t heads = 0;     // H
  int64_t layers = 0;    // L
  engine::Dtype dtype = engine::Dtype::f32;
  // The default factor on the sinusoidal table (option "scale"): 1 leaves its amplitude 1; a GPT
  // sets it so that the table starts the size of its token embeddings (models/model_config.h).
  double sinusoidal_scale = 1.0;
};

// Every name a model config may give (the factory's names and "seqpe").
const std::vector<std::string>& position_encoding_names();

// The PE called `name`, configured by `options` (a JSON object, {} for the defaults). `init_gen`
// draws learnable initialisations (RoPE-Mixed).
std::shared_ptr<PositionEncoding> make_position_encoding(const std::string& name, const nlohmann::json& options,
                                                         const PeDims& dims, engine::Generator& init_gen);

}  // namespace models::pe
