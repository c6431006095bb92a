// Values of the apps' command-line options, each read whole: "12x", "" or "1e3" given to an integer
// option is an error naming the option and the text, where std::stoll would take 12, throw a bare
// "stoll", or take 1.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace apps {

int64_t integer_option(const std::string& flag, const std::string& value);
uint64_t unsigned_option(const std::string& flag, const std::string& value);  // seeds
double number_option(const std::string& flag, const std::string& value);       // finite
bool boolean_option(const std::string& flag, const std::string& value);        // "0" or "1"
// "128,256,512": one or more integers, each at least `minimum`.
std::vector<int64_t> integer_list_option(const std::string& flag, const std::string& value, int64_t minimum);

// `value` read as the type of `like`, a run-config field's default: the text itself for a string,
// 0 or 1 for a boolean, a (non-negative) integer for an integer field, a finite number for a real
// one, JSON for an object or array. Errors name `flag` ("--steps expects an integer, got '6.9'").
nlohmann::json typed_option_value(const std::string& flag, const std::string& value, const nlohmann::json& like);

// The value of a `--set key=value` assignment: JSON when it parses as JSON (numbers, booleans,
// arrays, objects), else the text as a string. Text that is not UTF-8, and JSON nested deeper than
// engine::kMaxJsonDepth, are refused naming the key.
nlohmann::json assignment_value(const std::string& key, const std::string& text);

// Checks that `value` may replace run-config field `key` whose default is `base`: the same JSON
// type, where an integer field takes only integers ("channels=33.9" and "steps=6.9" are refused, not
// truncated) and a real field takes any number. The error names the key and both values.
void check_override_type(const std::string& key, const nlohmann::json& base, const nlohmann::json& value);

}  // namespace apps
