// Tests of the byte-level BPE tokenizer (data/bpe_tokenizer.h) against GPT-2's algorithm and files.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "data/bpe_tokenizer.h"
#include "data/byte_unicode.h"
#include "engine/error.h"
#include "temp_dir.h"

using data::BpeMerge;
using data::BpeTokenizer;
using data::TokenId;
using Ids = std::vector<TokenId>;

namespace {

// GPT-2's bytes_to_unicode transcribed from encoder.py, independent of data/byte_unicode.cpp:
// the bytes in the order of GPT-2's ids 0..255, and the code point each is written as.
struct Gpt2Bytes {
  std::vector<int> bytes;
  std::vector<char32_t> code_points;
  Gpt2Bytes() {
    for (int b = '!'; b <= '~'; ++b) bytes.push_back(b);
    for (int b = 0xA1; b <= 0xAC; ++b) bytes.push_back(b);
    for (int b = 0xAE; b <= 0xFF; ++b) bytes.push_back(b);
    code_points.assign(bytes.begin(), bytes.end());
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      if (std::find(bytes.begin(), bytes.end(), b) == bytes.end()) {
        bytes.push_back(b);
        code_points.push_back(static_cast<char32_t>(256 + n++));
      }
    }
  }
};

std::string utf8(char32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

// The first ten merges of GPT-2's merges.txt (ids 256..265 in its vocab.json) and <|endoftext|>
// at 266, written by hand in GPT-2's file format.
constexpr const char* kTinyMerges =
    "#version: 0.2\n"
    "\xc4\xa0 t\n"        // "Ġ t"   -> 256 " t"
    "\xc4\xa0 a\n"        // "Ġ a"   -> 257 " a"
    "h e\n"               //         -> 258 "he"
    "i n\n"               //         -> 259 "in"
    "r e\n"               //         -> 260 "re"
    "o n\n"               //         -> 261 "on"
    "\xc4\xa0t he\n"      // "Ġt he" -> 262 " the"
    "e r\n"               //         -> 263 "er"
    "\xc4\xa0 s\n"        // "Ġ s"   -> 264 " s"
    "a t\n";              //         -> 265 "at"

// (Strings are built with += throughout: GCC 12 warns falsely (-Wrestrict) on "..." + string&&.)
std::string tiny_vocab_json() {
  const Gpt2Bytes gpt2;
  std::string json = "{";
  const auto entry = [&](const std::string& text, int id) {
    json += '"';
    if (text == "\"" || text == "\\") json += '\\';
    json += text;
    json += "\": ";
    json += std::to_string(id);
    json += ", ";
  };
  for (int id = 0; id < 256; ++id) entry(utf8(gpt2.code_points[id]), id);
  const char* merged[] = {"\xc4\xa0t", "\xc4\xa0" "a", "he", "in", "re", "on", "\xc4\xa0the", "er",
                          "\xc4\xa0s", "at"};
  for (int i = 0; i < 10; ++i) entry(merged[i], 256 + i);
  json += "\"<|endoftext|>\": 266}";
  return json;
}

BpeTokenizer tiny_gpt2_tokenizer(const TempDir& dir) {
  write_text_file(dir / "vocab.json", tiny_vocab_json());
  write_text_file(dir / "merges.txt", kTinyMerges);
  return BpeTokenizer::load(dir / "vocab.json", dir / "merges.txt");
}

// GPT-2's bpe() transcribed on strings: repeatedly merge every occurrence (left to right) of the
// adjacent pair of lowest rank.
std::vector<std::string> reference_bpe(const std::string& word,
                                       const std::map<std::pair<std::string, std::string>, int>& ranks) {
  std::vector<std::string> parts;
  for (char c : word) parts.emplace_back(1, c);
  while (parts.size() > 1) {
    int best_rank = -1;
    std::pair<std::string, std::string> best;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      const auto it = ranks.find({parts[i], parts[i + 1]});
      if (it != ranks.end() && (best_rank < 0 || it->second < best_rank)) {
        best_rank = it->second;
        best = it->first;
      }
    }
    if (best_rank < 0) break;
    std::vector<std::string> merged;
    for (size_t i = 0; i < parts.size();) {
      if (i + 1 < parts.size() && parts[i] == best.first && parts[i + 1] == best.second) {
        merged.push_back(best.first + best.second);
        i += 2;
      } else {
        merged.push_back(parts[i++]);
      }
    }
    parts = std::move(merged);
  }
  return parts;
}

std::string random_bytes(std::mt19937& rng, size_t length, int alphabet) {
  std::uniform_int_distribution<int> byte(0, alphabet - 1);
  std::string s(length, '\0');
  for (char& c : s) c = static_cast<char>(alphabet == 256 ? byte(rng) : "ab \n'x\xc3\xa9.7"[byte(rng)]);
  return s;
}

}  // namespace

TEST_CASE("byte_unicode: GPT-2's mapping and id order") {
  const Gpt2Bytes gpt2;
  for (int id = 0; id < 256; ++id) {
    CHECK(data::bytes_in_code_point_order()[id] == gpt2.bytes[id]);
    CHECK(data::byte_to_code_point(static_cast<uint8_t>(gpt2.bytes[id])) == gpt2.code_points[id]);
  }
  CHECK(data::bytes_to_token_text(" the\n") == "\xc4\xa0the\xc4\x8a");  // "Ġthe" + "Ċ"
  CHECK(data::token_text_to_bytes("\xc4\xa0the\xc4\x8a") == std::string(" the\n"));
  CHECK(!data::token_text_to_bytes("\xe2\x82\xac").has_value());  // '€' stands for no byte
  CHECK(!data::token_text_to_bytes("\xff").has_value());
}

TEST_CASE("GPT-2 format: a hand-written vocab.json/merges.txt encodes to hand-derived ids") {
  TempDir dir;
  const BpeTokenizer tok = tiny_gpt2_tokenizer(dir);
  CHECK(tok.vocab_size() == 267);
  CHECK(tok.end_of_text() == 266);
  // GPT-2's byte ids: 'a' = 97 - 33 = 64, 't' = 83, ' ' = 220, '\n' = 198, byte 0 = 188.
  CHECK(tok.byte_token('a') == 64);
  CHECK(tok.byte_token(' ') == 220);
  CHECK(tok.byte_token('\n') == 198);
  CHECK(tok.byte_token(0) == 188);
  CHECK(tok.byte_token(0xAD) == 255);
  CHECK(tok.encode(" the") == Ids{262});
  CHECK(tok.encode("the") == Ids{83, 258});
  // " there": Ġ t h e r e -> (Ġ t) -> (h e) -> (r e) -> (Ġt he) = [" the", "re"].
  CHECK(tok.encode(" there") == Ids{262, 260});
  // " at": rank 1 (Ġ a) wins over rank 9 (a t), leaving "t" alone.
  CHECK(tok.encode(" at") == Ids{257, 83});
  CHECK(tok.encode("at") == Ids{265});
  CHECK(tok.encode("hello\n") == Ids{258, 75, 75, 78, 198});
  // 'é' is the bytes C3 A9: ids 106 + (0xC3 - 0xAE) = 127 and 94 + (0xA9 - 0xA1) = 102.
  CHECK(tok.encode("\xc3\xa9") == Ids{127, 102});
  CHECK(tok.encode("at<|endoftext|> the") == Ids{265, 266, 262});
  // encode_ordinary reads <|endoftext|> as text: "<|" "endoftext" "|>".
  const Ids ordinary = tok.encode_ordinary("<|endoftext|>");
  CHECK(std::find(ordinary.begin(), ordinary.end(), 266) == ordinary.end());
  CHECK(tok.decode(ordinary) == "<|endoftext|>");
  CHECK(tok.decode(Ids{262, 260, 266}) == " there<|endoftext|>");
  CHECK_THROWS_WITH_AS(tok.decode(Ids{1, 267}), doctest::Contains("token id 267 is outside"),
                       engine::Error);
}

TEST_CASE("encode matches GPT-2's bpe() on random words and scrambled merge ranks") {
  // Tokens over {a, b, c}, each the concatenation of two earlier ones; ranks then shuffled, so
  // that merge results often form pairs of lower rank (the case GPT-2's round-by-round order
  // decides).
  std::mt19937 rng(7);
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.emplace_back(1, static_cast<char>(b));
  std::vector<std::pair<std::string, std::string>> merge_texts;
  std::vector<std::string> pool = {"a", "b", "c"};
  while (merge_texts.size() < 40) {
    const std::string left = pool[rng() % pool.size()];
    const std::string right = pool[rng() % pool.size()];
    if (std::find(pool.begin(), pool.end(), left + right) != pool.end() || (left + right).size() > 8)
      continue;
    pool.push_back(left + right);
    tokens.push_back(left + right);
    merge_texts.emplace_back(left, right);
  }
  std::shuffle(merge_texts.begin(), merge_texts.end(), rng);
  std::map<std::string, TokenId> id_of;
  for (size_t id = 0; id < tokens.size(); ++id) id_of[tokens[id]] = static_cast<TokenId>(id);
  std::vector<BpeMerge> merges;
  std::map<std::pair<std::string, std::string>, int> ranks;
  for (const auto& [left, right] : merge_texts) {
    ranks[{left, right}] = static_cast<int>(merges.size());
    merges.push_back({id_of[left], id_of[right]});
  }
  const BpeTokenizer tok(tokens, merges, std::nullopt);
  for (int trial = 0; trial < 300; ++trial) {
    std::string word(1 + rng() % 40, 'a');
    for (char& c : word) c = "abc"[rng() % 3];
    Ids expected;
    for (const std::string& part : reference_bpe(word, ranks)) expected.push_back(id_of[part]);
    CAPTURE(word);
    CHECK(tok.encode(word) == expected);
    CHECK(tok.encode(word) == expected);  // again, from the cache
  }
}

TEST_CASE("encode applies a rank to all its occurrences before pairs that rank creates") {
  // Rank 0 (ab, a) only appears once rank 1 (a, b) has been applied. GPT-2 applies (a, b) to both
  // occurrences in "abab" first, giving [ab, ab]; merging greedily by rank as pairs appear would
  // give [aba, b].
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.emplace_back(1, static_cast<char>(b));
  tokens.push_back("ab");
  tokens.push_back("aba");
  const BpeTokenizer tok(tokens, {{256, 'a'}, {'a', 'b'}}, std::nullopt);
  CHECK(tok.encode("abab") == Ids{256, 256});
  CHECK(tok.encode("aba") == Ids{257});
}

TEST_CASE("decode(encode(bytes)) == bytes for random bytes, valid UTF-8 or not") {
  TempDir dir;
  const BpeTokenizer tok = tiny_gpt2_tokenizer(dir);
  std::mt19937 rng(11);
  for (int trial = 0; trial < 200; ++trial) {
    const std::string bytes = random_bytes(rng, rng() % 300, trial % 2 == 0 ? 256 : 10);
    const Ids ids = tok.encode(bytes);
    CHECK(tok.decode(ids) == bytes);
    CHECK(tok.decode(tok.encode_ordinary(bytes)) == bytes);
  }
  // One long run of punctuation-like bytes is a single piece: the merge loop must stay fast.
  const std::string long_piece(200000, '\xff');
  CHECK(tok.decode(tok.encode(long_piece)) == long_piece);
}

TEST_CASE("save then load gives the same vocabulary, merges and encodings") {
  TempDir dir;
  const BpeTokenizer tok = tiny_gpt2_tokenizer(dir);
  tok.save(dir / "saved_vocab.json", dir / "saved_merges.txt");
  const std::string merges_text = read_text_file(dir / "saved_merges.txt");
  CHECK(merges_text.starts_with("#version: 0.2\n\xc4\xa0 t\n"));
  const BpeTokenizer loaded = BpeTokenizer::load(dir / "saved_vocab.json", dir / "saved_merges.txt");
  CHECK(loaded.vocab_size() == tok.vocab_size());
  CHECK(loaded.end_of_text() == tok.end_of_text());
  CHECK(loaded.merges() == tok.merges());
  for (TokenId id = 0; id < tok.vocab_size(); ++id) CHECK(loaded.token_bytes(id) == tok.token_bytes(id));
  const std::string text = "In the beginning there was\n\n  at<|endoftext|>\xff\xc3\xa9 the end";
  CHECK(loaded.encode(text) == tok.encode(text));
}

TEST_CASE("load: malformed files give errors naming the file and line") {
  TempDir dir;
  const auto vocab = dir / "vocab.json";
  const auto merges = dir / "merges.txt";
  write_text_file(vocab, tiny_vocab_json());
  const auto load_with_merges = [&](const std::string& text) {
    write_text_file(merges, text);
    return BpeTokenizer::load(vocab, merges);
  };
  CHECK_THROWS_WITH_AS(load_with_merges("#version: 0.2\nh e\nin\n"),
                       doctest::Contains("merges.txt:3: expected two tokens separated by one space, got \"in\""),
                       engine::Error);
  CHECK_THROWS_WITH_AS(load_with_merges("#version: 0.2\nh  e\n"),
                       doctest::Contains("merges.txt:2: expected two tokens"), engine::Error);
  CHECK_THROWS_WITH_AS(load_with_merges("#version: 0.2\nh e\nth e\n"),
                       doctest::Contains("merges.txt:3: token \"th\" is not in the vocabulary"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(load_with_merges("#version: 0.2\nx y\n"),
                       doctest::Contains("merges.txt:2: merging \"x\" and \"y\" gives \"xy\", which is not in the vocabulary"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(load_with_merges("#version: 0.2\nh e\ni n\nh e\n"),
                       doctest::Contains("merges.txt:4: merge \"h e\" repeats line 2"), engine::Error);
  CHECK_THROWS_WITH_AS(load_with_merges("#version: 0.3\nh e\n"),
                       doctest::Contains("merges.txt:1: unsupported header \"#version: 0.3\""),
                       engine::Error);
  // Without the header line (some tools omit it) and with CRLF line ends, the file still loads.
  std::string crlf;
  for (size_t at = std::string(kTinyMerges).find('\n') + 1; at < std::strlen(kTinyMerges);) {
    const size_t end = std::string(kTinyMerges).find('\n', at);
    crlf += std::string(kTinyMerges + at, kTinyMerges + end) + "\r\n";
    at = end + 1;
  }
  CHECK(load_with_merges(crlf).merges().size() == 10);
  // Cut short, or empty: tokens that no merge makes are refused (they would never be produced).
  const std::string tiny = kTinyMerges;
  CHECK_THROWS_WITH_AS(load_with_merges(tiny.substr(0, tiny.rfind('\n', tiny.size() - 2) + 1)),
                       doctest::Contains("merges.txt: 1 of the tokens of"), engine::Error);
  CHECK_THROWS_WITH_AS(load_with_merges(""), doctest::Contains("10 of the tokens of"), engine::Error);
  CHECK_THROWS_WITH_AS(load_with_merges(tiny.substr(0, tiny.size() - 2) + "\n"),  // the last line cut mid-token
                       doctest::Contains("merges.txt:11: expected two tokens"), engine::Error);

  write_text_file(merges, kTinyMerges);
  write_text_file(vocab, "{\n  \"a\": 0,\n  \"b\": 1,\n  oops\n}");
  CHECK_THROWS_WITH_AS(BpeTokenizer::load(vocab, merges),
                       doctest::Contains("vocab.json: not valid JSON"), engine::Error);
  CHECK_THROWS_WITH_AS(BpeTokenizer::load(vocab, merges), doctest::Contains("line 4"), engine::Error);
  write_text_file(vocab, "[1, 2]");
  CHECK_THROWS_WITH_AS(BpeTokenizer::load(vocab, merges),
                       doctest::Contains("vocab.json: expected a JSON object"), engine::Error);
  write_text_file(vocab, "{\"a\": 0, \"b\": 5}");
  CHECK_THROWS_WITH_AS(BpeTokenizer::load(vocab, merges),
                       doctest::Contains("vocab.json: token \"b\" has id 5, outside [0, 2)"),
                       engine::Error);
  write_text_file(vocab, "{\"a\": 0, \"b\": \"1\"}");
  CHECK_THROWS_WITH_AS(BpeTokenizer::load(vocab, merges),
                       doctest::Contains("token \"b\" has id \"1\", expected an integer"), engine::Error);
  write_text_file(vocab, "{\"a\": 0, \"\xe2\x82\xac\": 1}");
  CHECK_THROWS_WITH_AS(BpeTokenizer::load(vocab, merges),
                       doctest::Contains("is not byte-level text"), engine::Error);
  // All 256 byte tokens must be present.
  std::string missing_byte = tiny_vocab_json();
  missing_byte.replace(missing_byte.find("\"!\": 0"), 6, "\"xx\": 0");
  write_text_file(vocab, missing_byte);
  write_text_file(merges, "#version: 0.2\n");
  CHECK_THROWS_WITH_AS(BpeTokenizer::load(vocab, merges),
                       doctest::Contains("vocab.json: BpeTokenizer: the vocabulary has no token for byte 33"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(BpeTokenizer::load(dir / "absent.json", merges),
                       doctest::Contains("absent.json: cannot open the tokenizer's vocab.json file"),
                       engine::Error);
}
