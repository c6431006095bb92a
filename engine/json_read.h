// Reading JSON from files and strings that users hand us: the one parser entry point of the engine,
// data and apps. Nesting is limited (nlohmann parses any depth, but copying, comparing and dumping a
// value recurse, so a file of a million '[' crashed every reader that printed or copied what it
// read), and errors name the source and the JSON path where the parse stopped:
//   "vocab.json: not valid JSON at /tokens/3 (line 4, column 9): ...".
#pragma once

#include <cstddef>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace engine {

// Deepest nesting of arrays and objects accepted (serde_json's default limit; the deepest file we
// read, a SQuAD file, nests 7 levels).
inline constexpr int kMaxJsonDepth = 128;

// Parses `text`. `source` names it in errors (a file, or "checkpoint X metadata field \"extra\"").
// Throws engine::Error for malformed JSON or nesting deeper than kMaxJsonDepth.
nlohmann::json parse_json(std::string_view text, const std::string& source);

// Reads and parses a whole file; errors name the file.
nlohmann::json read_json_file(const std::filesystem::path& path);

// `value` as compact JSON for an error message, cut to about `max_chars` characters.
std::string json_excerpt(const nlohmann::json& value, size_t max_chars = 80);

}  // namespace engine
