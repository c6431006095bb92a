// The checked JSON reader (engine/json_read.h): errors name the source and the JSON path, nesting
// past kMaxJsonDepth is refused (a million '[' used to crash every reader that printed or copied what
// it read), and every engine reader (safetensors header, checkpoint metadata) goes through it.
#include <doctest/doctest.h>

#include <cstring>

#include "engine/checkpoint.h"
#include "engine/json_read.h"
#include "engine/safetensors.h"
#include "file_test_util.h"

using engine::Error;
using engine::parse_json;

TEST_CASE("parse_json names the source and the JSON path of a syntax error") {
  CHECK(parse_json(R"({"a": [1, {"b": null}]})", "x.json") == nlohmann::json::parse(R"({"a": [1, {"b": null}]})"));
  CHECK_THROWS_WITH_AS(parse_json(R"({"a": [1, 2, {"b/c": [3, }]})", "x.json"),
                       doctest::Contains("x.json: not valid JSON at /a/2/b~1c/0: parse error at line 1, column 26"),
                       Error);
  CHECK_THROWS_WITH_AS(parse_json("", "empty.json"),
                       doctest::Contains("empty.json: not valid JSON at the top level: parse error"), Error);
  CHECK_THROWS_WITH_AS(parse_json(R"({"a": 1} x)", "x.json"), doctest::Contains("expected end of input"), Error);
  CHECK_THROWS_WITH_AS(parse_json("{\"t\": \"\xff\"}", "x.json"), doctest::Contains("at /t: parse error"), Error);
}

TEST_CASE("parse_json refuses nesting past kMaxJsonDepth, at any depth of input, without recursing") {
  const auto nested = [](size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  CHECK(parse_json(nested(engine::kMaxJsonDepth), "ok.json").is_array());
  CHECK_THROWS_WITH_AS(parse_json(nested(engine::kMaxJsonDepth + 1), "deep.json"),
                       doctest::Contains("deep.json: JSON nested deeper than 128 levels at /0/0/0"), Error);
  CHECK_THROWS_AS(parse_json(nested(1000000), "deeper.json"), Error);
  std::string objects;
  for (int i = 0; i < 200000; ++i) objects += "{\"k\":";
  CHECK_THROWS_WITH_AS(parse_json(objects + "1" + std::string(200000, '}'), "o.json"),
                       doctest::Contains("at /k/k/k/k"), Error);
}

TEST_CASE("read_json_file names the file; json_excerpt cuts long values") {
  file_test_util::ScratchDir dir;
  CHECK_THROWS_WITH_AS(engine::read_json_file(dir.file("missing.json")), doctest::Contains("missing.json: cannot open"),
                       Error);
  file_test_util::write_bytes(dir.file("bad.json"), "{\"layers\": }");
  CHECK_THROWS_WITH_AS(engine::read_json_file(dir.file("bad.json")), doctest::Contains("bad.json: not valid JSON at /layers"),
                       Error);
  CHECK_THROWS_WITH_AS(engine::read_json_file(dir.file("")), doctest::Contains("is a directory"), Error);
  CHECK(engine::json_excerpt(nlohmann::json(std::string(200, 'a')), 10) == "\"aaaaaaaaa...");
}

TEST_CASE("a safetensors header or checkpoint metadata nested a million deep is an error, not a crash") {
  file_test_util::ScratchDir dir;
  std::string header = "{\"w\":" + std::string(1000000, '[') + std::string(1000000, ']') + "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string bytes(8, '\0');
  const uint64_t length = header.size();
  std::memcpy(bytes.data(), &length, 8);
  file_test_util::write_bytes(dir.file("deep.safetensors"), bytes + header);
  CHECK_THROWS_WITH_AS(engine::load_safetensors(dir.file("deep.safetensors")),
                       doctest::Contains("deep.safetensors header: JSON nested deeper than 128 levels at /w/0/0"), Error);

  engine::save_safetensors(dir.file("deep.ckpt"), {},
                           {{"format", "seqpe-engine-checkpoint"}, {"format_version", "1"}, {"step", "3"},
                            {"generators", "{}"}, {"extra", std::string(5000, '[') + std::string(5000, ']')}});
  CHECK_THROWS_WITH_AS(engine::load_checkpoint(dir.file("deep.ckpt")),
                       doctest::Contains("metadata field \"extra\": JSON nested deeper than 128 levels"), Error);
}
