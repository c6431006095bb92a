// The checked JSON reader (json_read.h): nlohmann's SAX parser driving its own DOM builder, with a
// handler in between that tracks the JSON path and the nesting depth.
#include "engine/json_read.h"

#include <cstdint>
#include <fstream>
#include <sstream>
#include <vector>

#include "engine/error.h"

namespace engine {

namespace {

using nlohmann::json;

// Forwards every SAX event to nlohmann's DOM builder, keeping the path to the value being parsed
// so that errors can say where they happened.
class PathTrackingParser {
 public:
  PathTrackingParser(json& result, const std::string& source) : dom_(result, true), source_(source) {}

  bool null() { return value_begins() && dom_.null(); }
  bool boolean(bool v) { return value_begins() && dom_.boolean(v); }
  bool number_integer(json::number_integer_t v) { return value_begins() && dom_.number_integer(v); }
  bool number_unsigned(json::number_unsigned_t v) { return value_begins() && dom_.number_unsigned(v); }
  bool number_float(json::number_float_t v, const json::string_t& text) {
    return value_begins() && dom_.number_float(v, text);
  }
  bool string(json::string_t& v) { return value_begins() && dom_.string(v); }
  bool binary(json::binary_t& v) { return value_begins() && dom_.binary(v); }
  bool start_object(std::size_t size) { return nest(false) && dom_.start_object(size); }
  bool key(json::string_t& k) {
    frames_.back().key = k;
    return dom_.key(k);
  }
  bool end_object() {
    frames_.pop_back();
    return dom_.end_object();
  }
  bool start_array(std::size_t size) { return nest(true) && dom_.start_array(size); }
  bool end_array() {
    frames_.pop_back();
    return dom_.end_array();
  }
  [[noreturn]] bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
    // nlohmann's message starts with its exception id ("[json.exception.parse_error.101] "): drop it.
    std::string_view message = e.what();
    if (message.starts_with('[') && message.find("] ") != std::string_view::npos)
      message.remove_prefix(message.find("] ") + 2);
    throw Error(detail::concat(source_, ": not valid JSON at ", path(), ": ", message));
  }

 private:
  struct Frame {
    bool is_array;
    int64_t index = -1;  // arrays: the element being parsed
    std::string key;     // objects: the member being parsed
  };

  // Counts the element when the value is an array's.
  bool value_begins() {
    if (!frames_.empty() && frames_.back().is_array) frames_.back().index++;
    return true;
  }

  // An array or object begins: one level deeper, refused past the limit.
  bool nest(bool is_array) {
    value_begins();
    ENGINE_CHECK(frames_.size() < size_t(kMaxJsonDepth), source_, ": JSON nested deeper than ", kMaxJsonDepth,
                 " levels at ", path(), ": refused (no file this program reads nests that deep)");
    frames_.push_back({is_array, -1, {}});
    return true;
  }

  // The JSON pointer (RFC 6901) of the value being parsed; long paths keep their first levels.
  std::string path() const {
    constexpr size_t kShownLevels = 12;
    if (frames_.empty()) return "the top level";
    std::string text;
    for (size_t i = 0; i < frames_.size() && i < kShownLevels; ++i) {
      const Frame& f = frames_[i];
      text += '/';
      if (f.is_array) {
        text += std::to_string(f.index < 0 ? 0 : f.index);
        continue;
      }
      for (char c : f.key) text += c == '~' ? std::string("~0") : c == '/' ? std::string("~1") : std::string(1, c);
    }
    if (frames_.size() > kShownLevels) text += detail::concat("/... (", frames_.size(), " levels)");
    return text;
  }

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  const std::string& source_;
  std::vector<Frame> frames_;
};

}  // namespace

json parse_json(std::string_view text, const std::string& source) {
  json result;
  PathTrackingParser handler(result, source);
  json::sax_parse(text.begin(), text.end(), &handler);
  return result;
}

json read_json_file(const std::filesystem::path& path) {
  std::error_code error;
  ENGINE_CHECK(!std::filesystem::is_directory(path, error), path.string(), ": is a directory, expected a JSON file");
  std::ifstream in(path, std::ios::binary);
  ENGINE_CHECK(in, path.string(), ": cannot open");
  std::ostringstream contents;
  contents << in.rdbuf();
  ENGINE_CHECK(!in.bad(), path.string(), ": error while reading");
  return parse_json(contents.str(), path.string());
}

std::string json_excerpt(const json& value, size_t max_chars) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > max_chars) text = text.substr(0, max_chars) + "...";
  return text;
}

}  // namespace engine
