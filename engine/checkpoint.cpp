// Training checkpoints as one safetensors file (layout in checkpoint.h).
#include "engine/checkpoint.h"

#include <charconv>

#include "engine/json_read.h"
#include "engine/safetensors.h"

namespace engine {

namespace {

constexpr const char* kFormatName = "seqpe-engine-checkpoint";
constexpr const char* kModelPrefix = "model.";
constexpr const char* kOptimizerPrefix = "optim.";
constexpr const char* kExportFormatName = "pt";  // what PyTorch's safetensors helpers write

// The metadata value under `field`, or an error naming the field.
const std::string& required_field(const std::string& path, const SafetensorsMetadata& metadata,
                                   const std::string& field) {
  const auto it = metadata.find(field);
  ENGINE_CHECK(it != metadata.end(), "load_checkpoint ", path, ": checkpoint lacks metadata field \"", field,
               "\"");
  return it->second;
}

// A whole string as a decimal integer, or an error naming the field.
template <typename Int>
Int parse_integer(const std::string& path, const std::string& field, const std::string& text) {
  Int value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  ENGINE_CHECK(error == std::errc() && end == text.data() + text.size() && !text.empty(), "load_checkpoint ", path,
               ": metadata field \"", field, "\" should be an integer, got \"", text, "\"");
  return value;
}

// A metadata value as JSON, or an error naming the field.
nlohmann::json parse_json_field(const std::string& path, const std::string& field, const std::string& text) {
  return parse_json(text, detail::concat("load_checkpoint ", path, ": metadata field \"", field, "\""));
}

// Generator states from {"name": {"seed": s, "offset": o}}.
std::map<std::string, std::pair<uint64_t, uint64_t>> parse_generators(const std::string& path,
                                                                       const nlohmann::json& json) {
  ENGINE_CHECK(json.is_object(), "load_checkpoint ", path, ": metadata field \"generators\" is not a JSON object");
  std::map<std::string, std::pair<uint64_t, uint64_t>> generators;
  for (const auto& [name, state] : json.items()) {
    uint64_t parts[2] = {0, 0};
    const char* fields[2] = {"seed", "offset"};
    for (int i = 0; i < 2; ++i) {
      ENGINE_CHECK(state.is_object() && state.contains(fields[i]) && state[fields[i]].is_number_unsigned(),
                   "load_checkpoint ", path, ": generator \"", name, "\" lacks an unsigned integer \"", fields[i],
                   "\" (got ", json_excerpt(state), ")");
      parts[i] = state[fields[i]].get<uint64_t>();
    }
    generators[name] = {parts[0], parts[1]};
  }
  return generators;
}

// Refuses metadata that is not this build's checkpoint format.
void check_checkpoint_format(const std::string& path, const SafetensorsMetadata& metadata) {
  const auto format = metadata.find("format");
  ENGINE_CHECK(format != metadata.end(), "load_checkpoint ", path, ": checkpoint lacks metadata field \"format\": ",
               "this is a plain safetensors file, not a training checkpoint (read weights with load_safetensors)");
  ENGINE_CHECK(format->second == kFormatName, "load_checkpoint ", path, ": metadata field \"format\" is \"",
               format->second, "\", expected \"", kFormatName, "\"");
  const int version = parse_integer<int>(path, "format_version", required_field(path, metadata, "format_version"));
  ENGINE_CHECK(version == kCheckpointFormatVersion, "load_checkpoint ", path, ": checkpoint format version ",
               version, ", this build reads ", kCheckpointFormatVersion);
}

}  // namespace

void save_checkpoint(const std::string& path, const TrainingState& state) {
  ENGINE_CHECK(state.extra.is_object(), "save_checkpoint ", path, ": extra must be a JSON object, got ",
               state.extra.type_name());
  std::map<std::string, Tensor> tensors;
  for (const auto& [name, tensor] : state.model) tensors.emplace(kModelPrefix + name, tensor);
  for (const auto& [name, tensor] : state.optimizer) tensors.emplace(kOptimizerPrefix + name, tensor);

  nlohmann::json generators = nlohmann::json::object();
  for (const auto& [name, seed_offset] : state.generators)
    generators[name] = {{"seed", seed_offset.first}, {"offset", seed_offset.second}};

  const SafetensorsMetadata metadata = {
      {"format", kFormatName},
      {"format_version", std::to_string(kCheckpointFormatVersion)},
      {"step", std::to_string(state.step)},
      {"generators", generators.dump()},
      {"extra", state.extra.dump()},
  };
  save_safetensors(path, tensors, metadata);
}

TrainingState load_checkpoint(const std::string& path) {
  SafetensorsFile file = load_safetensors(path);
  const SafetensorsMetadata& metadata = file.metadata;
  check_checkpoint_format(path, metadata);

  TrainingState state;
  state.step = parse_integer<int64_t>(path, "step", required_field(path, metadata, "step"));
  state.generators = parse_generators(
      path, parse_json_field(path, "generators", required_field(path, metadata, "generators")));
  state.extra = parse_json_field(path, "extra", required_field(path, metadata, "extra"));
  ENGINE_CHECK(state.extra.is_object(), "load_checkpoint ", path, ": metadata field \"extra\" is not a JSON object");

  const std::string model_prefix = kModelPrefix, optimizer_prefix = kOptimizerPrefix;
  for (auto& [name, tensor] : file.tensors) {
    if (name.starts_with(model_prefix)) {
      state.model.emplace(name.substr(model_prefix.size()), std::move(tensor));
    } else if (name.starts_with(optimizer_prefix)) {
      state.optimizer.emplace(name.substr(optimizer_prefix.size()), std::move(tensor));
    } else {
      throw Error(detail::concat("load_checkpoint ", path, ": tensor '", name, "' belongs to neither \"",
                                 kModelPrefix, "\" nor \"", kOptimizerPrefix, "\""));
    }
  }
  return state;
}

int64_t read_checkpoint_step(const std::string& path) {
  const SafetensorsMetadata metadata = read_safetensors_metadata(path);
  check_checkpoint_format(path, metadata);
  return parse_integer<int64_t>(path, "step", required_field(path, metadata, "step"));
}

void export_weights(const std::string& checkpoint_path, const std::string& weights_path, Dtype weight_dtype) {
  ENGINE_CHECK(is_floating(weight_dtype), "export_weights ", weights_path, ": weight dtype must be floating, got ",
               dtype_name(weight_dtype));
  const TrainingState state = load_checkpoint(checkpoint_path);
  std::map<std::string, Tensor> weights;
  for (const auto& [name, tensor] : state.model)
    weights.emplace(name, is_floating(tensor.dtype()) ? tensor.to(weight_dtype) : tensor);
  save_safetensors(weights_path, weights, {{"format", kExportFormatName}, {"step", std::to_string(state.step)}});
}

ModelWeights load_model_weights(const std::string& path) {
  const SafetensorsMetadata metadata = read_safetensors_metadata(path);
  const auto format = metadata.find("format");
  if (format == metadata.end() || format->second != kExportFormatName) {
    TrainingState state = load_checkpoint(path);
    return {std::move(state.model), state.step};
  }
  SafetensorsFile file = load_safetensors(path);
  return {std::move(file.tensors), parse_integer<int64_t>(path, "step", required_field(path, file.metadata, "step"))};
}

}  // namespace engine
