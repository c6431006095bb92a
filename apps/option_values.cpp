// Parsing command-line option values whole, with errors naming the option and the text
// (apps/option_values.h).
#include "apps/option_values.h"

#include <charconv>
#include <cmath>

#include "engine/error.h"
#include "engine/json_read.h"

namespace apps {

namespace {

// Parses all of `value` with std::from_chars into `out`, or fails naming the option.
template <typename T>
T parse_whole(const std::string& flag, const std::string& value, const char* expected) {
  T out{};
  const char* end = value.data() + value.size();
  const auto [stop, error] = std::from_chars(value.data(), end, out);
  ENGINE_CHECK(!value.empty() && error == std::errc() && stop == end, flag, " expects ", expected, ", got '", value,
               "'");
  return out;
}

}  // namespace

int64_t integer_option(const std::string& flag, const std::string& value) {
  return parse_whole<int64_t>(flag, value, "an integer");
}

uint64_t unsigned_option(const std::string& flag, const std::string& value) {
  return parse_whole<uint64_t>(flag, value, "a non-negative integer");
}

double number_option(const std::string& flag, const std::string& value) {
  const double number = parse_whole<double>(flag, value, "a number");
  ENGINE_CHECK(std::isfinite(number), flag, " expects a finite number, got '", value, "'");
  return number;
}

bool boolean_option(const std::string& flag, const std::string& value) {
  ENGINE_CHECK(value == "0" || value == "1", flag, " expects 0 or 1, got '", value, "'");
  return value == "1";
}

std::vector<int64_t> integer_list_option(const std::string& flag, const std::string& value, int64_t minimum) {
  std::vector<int64_t> numbers;
  for (size_t start = 0;;) {
    const size_t comma = value.find(',', start);
    const std::string item = value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    numbers.push_back(parse_whole<int64_t>(flag, item, "comma-separated integers"));
    ENGINE_CHECK(numbers.back() >= minimum, flag, " values must be >= ", minimum, ", got ", numbers.back());
    if (comma == std::string::npos) return numbers;
    start = comma + 1;
  }
}

nlohmann::json assignment_value(const std::string& key, const std::string& text) {
  // Run configs are written as JSON (run.json, model.json, checkpoints), which holds UTF-8 only.
  try {
    (void)nlohmann::json(text).dump();
  } catch (const nlohmann::json::type_error&) {
    throw engine::Error("--set " + key + ": the value is not valid UTF-8 (run configs are stored as JSON)");
  }
  try {
    return engine::parse_json(text, "--set " + key);
  } catch (const engine::Error&) {
    // Well-formed JSON that parse_json refused is nested too deep; anything else is plain text.
    if (nlohmann::json::accept(text)) throw;
    return nlohmann::json(text);
  }
}

nlohmann::json typed_option_value(const std::string& flag, const std::string& value, const nlohmann::json& like) {
  if (like.is_string()) return value;
  if (like.is_boolean()) return boolean_option(flag, value);
  if (like.is_number_unsigned()) return unsigned_option(flag, value);
  if (like.is_number_integer()) return integer_option(flag, value);
  if (like.is_number()) return number_option(flag, value);
  return assignment_value(flag, value);
}

void check_override_type(const std::string& key, const nlohmann::json& base, const nlohmann::json& value) {
  const bool same_type = std::string(base.type_name()) == value.type_name();
  if (base.is_number_integer()) {
    ENGINE_CHECK(value.is_number_integer(), "run config: '", key, "' must be an integer, got ",
                 engine::json_excerpt(value), " (default ", base.dump(), ")");
    return;
  }
  ENGINE_CHECK(same_type || (base.is_number() && value.is_number()), "run config: '", key, "' must be a ",
               base.type_name(), ", got ", engine::json_excerpt(value));
}

}  // namespace apps
