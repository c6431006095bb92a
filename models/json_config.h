// Reading and writing model configs as JSON (the files saved beside the weights).
//
// ConfigReader walks one JSON object field by field: each accessor returns the field's value (or
// the default when it is absent), checks its type and range, and throws an engine::Error naming the
// config, the field and the bad value ("GPT config field 'layers' must be >= 1, got 0"). finish()
// refuses fields nobody asked for, so that a typo ("chanels") is not silently ignored.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/dtype.h"

namespace models {

class ConfigReader {
 public:
  // `what` names the config in errors ("GPT config", "position encoding 'rope' options").
  ConfigReader(const nlohmann::json& object, std::string what);

  int64_t integer(const std::string& field, int64_t fallback, int64_t minimum);
  // A real in [minimum, maximum) (dropout rates).
  double real(const std::string& field, double fallback, double minimum, double maximum);
  // A real > 0.
  double positive(const std::string& field, double fallback);
  bool boolean(const std::string& field, bool fallback);
  // A string from `choices`.
  std::string choice(const std::string& field, const std::string& fallback, const std::vector<std::string>& choices);
  // A JSON object, as it is (checked by whoever reads it).
  nlohmann::json object(const std::string& field);
  // "f32" or "f64".
  engine::Dtype dtype(const std::string& field, engine::Dtype fallback);
  // Throws for any field that no accessor read.
  void finish() const;

  // Throws "<what> field '<field>' <message>".
  [[noreturn]] void fail(const std::string& field, const std::string& message) const;

 private:
  const nlohmann::json* find(const std::string& field);

  const nlohmann::json& object_;
  std::string what_;
  std::set<std::string> read_;
};

// Where two configs disagree: a field's path ("position_encoding_options.encoder.layers") and its
// value in each.
struct ConfigDifference {
  std::string path;
  nlohmann::json in_subset, in_full;  // null where absent
};
// The first leaf of `subset` (in key order, objects entered) whose value differs from `full`'s at the
// same path, or none. Numbers compare by value (1 equals 1.0); fields only `full` has are ignored.
std::optional<ConfigDifference> first_difference(const nlohmann::json& subset, const nlohmann::json& full);

// "<dir>/model.safetensors" -> "<dir>/model.json": where a model's config lives beside its weights.
std::string config_path_beside(const std::string& weights_path);

// Writes `value` (pretty-printed) atomically: a temporary file renamed over `path`.
void write_json_file(const std::string& path, const nlohmann::json& value);
// Reads a JSON file; errors name the file and the parse error.
nlohmann::json read_json_file(const std::string& path);

}  // namespace models
