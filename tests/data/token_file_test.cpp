// Tests of token files (data/token_file.h): storage widths, rewriting, errors.
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "data/token_file.h"
#include "engine/error.h"
#include "temp_dir.h"

using data::TokenFile;
using data::TokenId;

namespace {

std::vector<TokenId> pattern_tokens(int64_t count, int64_t vocab_size) {
  std::vector<TokenId> tokens(count);
  for (int64_t i = 0; i < count; ++i) tokens[i] = static_cast<TokenId>((i * 7919 + 13) % vocab_size);
  return tokens;
}

}  // namespace

TEST_CASE("token file: round trip with u16 and u32 storage") {
  TempDir dir;
  for (const int64_t vocab_size : {int64_t{300}, int64_t{65536}, int64_t{70000}}) {
    CAPTURE(vocab_size);
    const std::vector<TokenId> tokens = pattern_tokens(1001, vocab_size);
    const auto path = dir / "tokens.bin";
    data::write_token_file(path, tokens, vocab_size);
    const int width = vocab_size <= 65536 ? 2 : 4;
    CHECK(std::filesystem::file_size(path) == data::kTokenFileHeaderBytes + 1001 * width);

    const TokenFile file(path);
    CHECK(file.size() == 1001);
    CHECK(file.vocab_size() == vocab_size);
    CHECK(file.bytes_per_token() == width);
    std::vector<TokenId> all(1001);
    file.read(0, all);
    CHECK(all == tokens);
    std::vector<int64_t> middle(10);
    file.read(500, middle);
    for (int i = 0; i < 10; ++i) CHECK(middle[i] == tokens[500 + i]);
    CHECK(file.at(1000) == tokens[1000]);
  }
  // No temporary file is left next to the result.
  int entries = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path())) ++entries;
  CHECK(entries == 1);
}

TEST_CASE("token file: the largest token of a u16 vocabulary and an empty file") {
  TempDir dir;
  const std::vector<TokenId> tokens = {65535, 0, 40000};
  data::write_token_file(dir / "max.bin", tokens, 65536);
  CHECK(TokenFile(dir / "max.bin").at(0) == 65535);
  CHECK(TokenFile(dir / "max.bin").at(2) == 40000);
  data::write_token_file(dir / "empty.bin", {}, 50257);
  const TokenFile empty(dir / "empty.bin");
  CHECK(empty.size() == 0);
  CHECK(empty.vocab_size() == 50257);
}

TEST_CASE("token file: rewriting replaces the file; moved-from files are empty") {
  TempDir dir;
  const auto path = dir / "tokens.bin";
  data::write_token_file(path, pattern_tokens(50, 300), 300);
  TokenFile first(path);
  data::write_token_file(path, pattern_tokens(20, 1000), 1000);
  // The open mapping still sees the old file (rename replaced the name, not the contents).
  CHECK(first.size() == 50);
  TokenFile second(path);
  CHECK(second.size() == 20);
  TokenFile moved = std::move(second);
  CHECK(moved.size() == 20);
  CHECK(second.size() == 0);
}

TEST_CASE("token file: errors name the file and the fault") {
  TempDir dir;
  const auto path = dir / "tokens.bin";
  const std::vector<TokenId> bad = {1, 2, 300};
  CHECK_THROWS_WITH_AS(data::write_token_file(path, bad, 300),
                       doctest::Contains("token 300 at position 2 is outside the vocabulary [0, 300)"),
                       engine::Error);
  CHECK(!std::filesystem::exists(path));
  CHECK_THROWS_WITH_AS(data::write_token_file(dir / "missing" / "t.bin", bad, 1000),
                       doctest::Contains("cannot create"), engine::Error);
  CHECK_THROWS_WITH_AS(TokenFile(dir / "nope.bin"),
                       doctest::Contains("nope.bin: cannot open token file"), engine::Error);

  write_text_file(dir / "short.bin", "SEQPETOK");
  CHECK_THROWS_WITH_AS(TokenFile(dir / "short.bin"),
                       doctest::Contains("short.bin: truncated token file: 8 bytes"), engine::Error);
  write_text_file(dir / "text.bin", std::string(64, 'x'));
  CHECK_THROWS_WITH_AS(TokenFile(dir / "text.bin"),
                       doctest::Contains("text.bin: not a token file (bad magic"), engine::Error);

  data::write_token_file(path, pattern_tokens(100, 300), 300);
  std::string bytes = read_text_file(path);
  std::string newer = bytes;
  newer[8] = 2;  // version field
  write_text_file(dir / "newer.bin", newer);
  CHECK_THROWS_WITH_AS(TokenFile(dir / "newer.bin"),
                       doctest::Contains("newer.bin: token file version 2, but this build reads version 1"),
                       engine::Error);
  write_text_file(dir / "cut.bin", bytes.substr(0, bytes.size() - 1));
  CHECK_THROWS_WITH_AS(TokenFile(dir / "cut.bin"),
                       doctest::Contains("cut.bin: truncated or corrupt token file: the header says 100 "
                                         "tokens of 2 bytes, but 199 bytes follow"),
                       engine::Error);
  std::string width = bytes;
  width[16] = 3;  // bytes-per-token field
  write_text_file(dir / "width.bin", width);
  CHECK_THROWS_WITH_AS(TokenFile(dir / "width.bin"), doctest::Contains("bad token width 3"),
                       engine::Error);

  const TokenFile file(path);
  std::vector<TokenId> out(10);
  CHECK_THROWS_WITH_AS(file.read(95, out),
                       doctest::Contains("cannot read tokens [95, 105) of a file of 100 tokens"),
                       engine::Error);
  CHECK_THROWS_AS(file.at(-1), engine::Error);

  // A stored token outside the vocabulary (found by fuzzing: 0xfffd116f in a u32 file read as
  // 4294775151 by one accessor and -192145 by the other, with no error).
  std::string damaged = bytes;
  damaged[32 + 2 * 7] = '\xff';  // token 7: 0x..ff >= 300
  damaged[32 + 2 * 7 + 1] = '\xff';
  write_text_file(dir / "damaged.bin", damaged);
  const TokenFile damaged_file(dir / "damaged.bin");
  std::vector<int64_t> all(100);
  CHECK_THROWS_WITH_AS(damaged_file.read(0, std::span<int64_t>(all)),
                       doctest::Contains("damaged.bin: token 65535 at position 7 is outside the vocabulary [0, 300)"),
                       engine::Error);
  CHECK_THROWS_AS(damaged_file.at(7), engine::Error);
  CHECK(damaged_file.at(6) == pattern_tokens(100, 300)[6]);
}
