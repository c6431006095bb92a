// ConfigReader (models/json_config.h): typed, range-checked reads of a JSON config's fields, errors
// naming the field.
#include "models/json_config.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "engine/error.h"
#include "engine/json_read.h"

namespace models {

ConfigReader::ConfigReader(const nlohmann::json& object, std::string what) : object_(object), what_(std::move(what)) {
  ENGINE_CHECK(object.is_object(), what_, " must be a JSON object, got ", object.dump());
}

void ConfigReader::fail(const std::string& field, const std::string& message) const {
  throw engine::Error(what_ + " field '" + field + "' " + message);
}

const nlohmann::json* ConfigReader::find(const std::string& field) {
  read_.insert(field);
  auto it = object_.find(field);
  return it == object_.end() ? nullptr : &*it;
}

int64_t ConfigReader::integer(const std::string& field, int64_t fallback, int64_t minimum) {
  const nlohmann::json* value = find(field);
  if (!value) return fallback;
  if (!value->is_number_integer()) fail(field, "must be an integer, got " + value->dump());
  const int64_t v = value->get<int64_t>();
  if (v < minimum) fail(field, "must be >= " + std::to_string(minimum) + ", got " + std::to_string(v));
  return v;
}

double ConfigReader::real(const std::string& field, double fallback, double minimum, double maximum) {
  const nlohmann::json* value = find(field);
  if (!value) return fallback;
  if (!value->is_number()) fail(field, "must be a number, got " + value->dump());
  const double v = value->get<double>();
  if (!(v >= minimum && v < maximum)) {
    std::ostringstream range;
    range << "must be in [" << minimum << ", " << maximum << "), got " << value->dump();
    fail(field, range.str());
  }
  return v;
}

double ConfigReader::positive(const std::string& field, double fallback) {
  const nlohmann::json* value = find(field);
  if (!value) return fallback;
  if (!value->is_number() || !(value->get<double>() > 0.0)) fail(field, "must be a number > 0, got " + value->dump());
  return value->get<double>();
}

bool ConfigReader::boolean(const std::string& field, bool fallback) {
  const nlohmann::json* value = find(field);
  if (!value) return fallback;
  if (!value->is_boolean()) fail(field, "must be true or false, got " + value->dump());
  return value->get<bool>();
}

std::string ConfigReader::choice(const std::string& field, const std::string& fallback,
                                 const std::vector<std::string>& choices) {
  const nlohmann::json* value = find(field);
  if (!value) return fallback;
  std::string list;
  for (const std::string& c : choices) list += (list.empty() ? "\"" : ", \"") + c + "\"";
  if (value->is_string())
    for (const std::string& c : choices)
      if (value->get<std::string>() == c) return c;
  fail(field, "must be one of " + list + ", got " + value->dump());
}

nlohmann::json ConfigReader::object(const std::string& field) {
  const nlohmann::json* value = find(field);
  if (!value) return nlohmann::json::object();
  if (!value->is_object()) fail(field, "must be a JSON object, got " + value->dump());
  return *value;
}

engine::Dtype ConfigReader::dtype(const std::string& field, engine::Dtype fallback) {
  const std::string name = choice(field, engine::dtype_name(fallback), {"f32", "f64"});
  return name == "f64" ? engine::Dtype::f64 : engine::Dtype::f32;
}

void ConfigReader::finish() const {
  for (const auto& [field, value] : object_.items())
    if (!read_.count(field))
      throw engine::Error(what_ + " has an unknown field '" + field + "' (value " + value.dump() + ")");
}

namespace {

std::optional<ConfigDifference> first_difference_under(const nlohmann::json& subset, const nlohmann::json& full,
                                                       const std::string& path) {
  if (subset.is_object() && full.is_object()) {
    for (const auto& [key, value] : subset.items()) {
      const std::string field = path.empty() ? key : path + "." + key;
      auto it = full.find(key);
      if (it == full.end()) return ConfigDifference{field, value, nullptr};
      if (auto difference = first_difference_under(value, *it, field)) return difference;
    }
    return std::nullopt;
  }
  if (subset == full) return std::nullopt;
  return ConfigDifference{path, subset, full};
}

}  // namespace

std::optional<ConfigDifference> first_difference(const nlohmann::json& subset, const nlohmann::json& full) {
  return first_difference_under(subset, full, "");
}

std::string config_path_beside(const std::string& weights_path) {
  return std::filesystem::path(weights_path).replace_extension(".json").string();
}

void write_json_file(const std::string& path, const nlohmann::json& value) {
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::trunc);
    ENGINE_CHECK(out.good(), "write_json_file: cannot open ", temp, " for writing");
    out << value.dump(2) << '\n';
    out.flush();
    if (!out.good()) {
      std::remove(temp.c_str());
      throw engine::Error("write_json_file: writing " + temp + " failed (disk full?)");
    }
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    std::remove(temp.c_str());
    throw engine::Error("write_json_file: cannot rename " + temp + " over " + path);
  }
}

nlohmann::json read_json_file(const std::string& path) {
  return engine::read_json_file(path);
}

}  // namespace models
