// Making a position encoding from its config name and JSON options (models/pe/factory.h).
#include "models/pe/factory.h"

#include "models/json_config.h"
#include "models/pe/alibi.h"
#include "models/pe/rope.h"
#include "models/pe/sinusoidal.h"

namespace models::pe {

const std::vector<std::string>& position_encoding_names() {
  static const std::vector<std::string> names = {"ape",   "sin",  "rope", "rope2d", "rope_mixed",
                                                 "alibi", "nope", "seqpe"};
  return names;
}

std::shared_ptr<PositionEncoding> make_position_encoding(const std::string& name, const nlohmann::json& options,
                                                         const PeDims& dims, engine::Generator& init_gen) {
  ENGINE_CHECK(dims.heads > 0 && dims.channels % dims.heads == 0, "make_position_encoding: heads ", dims.heads,
               " must divide channels ", dims.channels);
  ConfigReader reader(options, "position encoding '" + name + "' options");
  const int64_t head_dim = dims.channels / dims.heads;
  // The rotary PEs rotate pairs of a head's dims (axial ones split the pairs in two halves).
  auto require_head_dim_multiple = [&](int64_t multiple) {
    if (head_dim % multiple != 0)
      throw engine::Error("position encoding '" + name + "' needs a head dim ('channels' / 'heads' = " +
                          std::to_string(head_dim) + ") that is a multiple of " + std::to_string(multiple));
  };
  std::shared_ptr<PositionEncoding> pe;
  if (name == "ape" || name == "nope") {
    // The model owns the learned table (ape), or there is nothing to add (nope).
  } else if (name == "sin") {
    const double base = reader.positive("base", 10000.0);
    const int64_t max_position = reader.integer("max_position", 20000, 0);
    const double scale = reader.positive("scale", dims.sinusoidal_scale);
    if (dims.channels % 2 != 0)
      throw engine::Error("position encoding 'sin' needs an even 'channels', got " + std::to_string(dims.channels));
    pe = std::make_shared<Sinusoidal>(max_position, dims.channels, base, scale, dims.dtype);
  } else if (name == "rope") {
    const double base = reader.positive("base", 10000.0);
    require_head_dim_multiple(2);
    pe = std::make_shared<Rope>(head_dim, base, dims.dtype);
  } else if (name == "rope2d") {
    const double base = reader.positive("base", 10000.0);
    require_head_dim_multiple(4);
    pe = std::make_shared<Rope2d>(head_dim, base, dims.dtype);
  } else if (name == "rope_mixed") {
    const double base = reader.positive("base", 10.0);
    require_head_dim_multiple(4);
    pe = std::make_shared<RopeMixed>(dims.layers, dims.heads, head_dim, base, init_gen, dims.dtype);
  } else if (name == "alibi") {
    pe = std::make_shared<Alibi>(dims.heads, reader.boolean("scaled_by_attention_scale", true), dims.dtype);
  } else if (name == "seqpe") {
    throw engine::Error("position encoding 'seqpe' is built by seqpe/ (its encoder and objectives) and passed to "
                        "the model; make_position_encoding builds only the baselines");
  } else {
    std::string list;
    for (const std::string& n : position_encoding_names()) list += (list.empty() ? "" : ", ") + n;
    throw engine::Error("unknown position encoding '" + name + "'; known: " + list);
  }
  reader.finish();
  return pe;
}

}  // namespace models::pe
