// Tests of BPE training (data/bpe_trainer.h): merges worked by hand, incremental counts, round
// trips.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "data/bpe_trainer.h"
#include "data/pretokenizer.h"
#include "engine/error.h"
#include "temp_dir.h"

using data::BpeTokenizer;
using data::TokenId;
using Ids = std::vector<TokenId>;
using BytePair = std::pair<std::string, std::string>;

namespace {

std::vector<BytePair> merges_as_bytes(const BpeTokenizer& tok) {
  std::vector<BytePair> out;
  for (const data::BpeMerge& m : tok.merges()) out.emplace_back(tok.token_bytes(m.left), tok.token_bytes(m.right));
  return out;
}

// Training the slow, obvious way: recount every pair over every word before each merge; pick the
// highest count, ties to the bytewise smallest (left, right); never merge a pair twice.
std::vector<BytePair> reference_train(const std::vector<std::string_view>& texts, int64_t vocab_size,
                                      int64_t min_pair_count) {
  std::map<std::string, int64_t> word_counts;
  for (std::string_view text : texts)
    for (std::string_view piece : data::pretokenize(text)) ++word_counts[std::string(piece)];
  std::vector<std::pair<std::vector<std::string>, int64_t>> words;
  for (const auto& [word, count] : word_counts) {
    std::vector<std::string> parts;
    for (char c : word) parts.emplace_back(1, c);
    words.emplace_back(parts, count);
  }
  std::set<std::string> vocab;
  for (int b = 0; b < 256; ++b) vocab.insert(std::string(1, static_cast<char>(b)));
  std::set<BytePair> merged;
  std::vector<BytePair> merges;
  while (static_cast<int64_t>(vocab.size()) + 1 < vocab_size) {
    std::map<BytePair, int64_t> pair_counts;
    for (const auto& [parts, count] : words)
      for (size_t i = 0; i + 1 < parts.size(); ++i) pair_counts[{parts[i], parts[i + 1]}] += count;
    const BytePair* best = nullptr;
    int64_t best_count = 0;
    for (const auto& [pair, count] : pair_counts) {  // std::map order: bytewise smallest first
      if (!merged.contains(pair) && count > best_count) {
        best = &pair;
        best_count = count;
      }
    }
    if (best == nullptr || best_count < min_pair_count) break;
    const BytePair pair = *best;
    merges.push_back(pair);
    merged.insert(pair);
    vocab.insert(pair.first + pair.second);
    for (auto& [parts, count] : words) {
      std::vector<std::string> out;
      for (size_t i = 0; i < parts.size();) {
        if (i + 1 < parts.size() && parts[i] == pair.first && parts[i + 1] == pair.second) {
          out.push_back(pair.first + pair.second);
          i += 2;
        } else {
          out.push_back(parts[i++]);
        }
      }
      parts = std::move(out);
    }
  }
  return merges;
}

}  // namespace

TEST_CASE("train_bpe: first merges on a small text, worked by hand") {
  // Pieces: "low" x1, " low" x2, " lower" x1, " lowest" x1. Pair counts: (l,o) 5, (o,w) 5,
  // (' ',l) 4, (w,e) 2, the rest 1. (l,o) and (o,w) tie at 5: "l" < "o", so (l,o) first; then
  // (lo,w) 5, (' ',low) 4, (' low',e) 2; every other pair occurs once, below min_pair_count 2.
  const std::vector<std::string_view> texts = {"low lower lowest low low"};
  const BpeTokenizer tok = data::train_bpe(texts, 1000);
  CHECK(merges_as_bytes(tok) ==
        std::vector<BytePair>{{"l", "o"}, {"lo", "w"}, {" ", "low"}, {" low", "e"}});
  CHECK(tok.vocab_size() == 256 + 4 + 1);
  CHECK(tok.token_bytes(256) == "lo");
  CHECK(tok.token_bytes(259) == " lowe");
  CHECK(tok.end_of_text() == 260);
  CHECK(tok.token_bytes(260) == "<|endoftext|>");
  // Byte ids follow GPT-2's order: 'r' is 114 - 33 = 81.
  CHECK(tok.encode("low lower") == Ids{257, 259, 81});

  // vocab_size bounds the merges: 256 + 2 + 1.
  CHECK(merges_as_bytes(data::train_bpe(texts, 259)) == std::vector<BytePair>{{"l", "o"}, {"lo", "w"}});
  // With min_pair_count 1 the single pairs follow, ties broken bytewise: (" lowe", "r") first.
  const BpeTokenizer more = data::train_bpe(texts, 262, 1);
  CHECK(merges_as_bytes(more).back() == BytePair{" lowe", "r"});
}

TEST_CASE("train_bpe: overlapping repeats are counted and merged left to right") {
  // "aaaa" x3: (a,a) occurs 3 times per word = 9; merged left to right it gives "aa aa", whose pair
  // (aa,aa) then occurs 3 times.
  const std::vector<std::string_view> texts = {"aaaa aaaa aaaa"};
  const BpeTokenizer tok = data::train_bpe(texts, 300);
  const std::vector<BytePair> merges = merges_as_bytes(tok);
  REQUIRE(merges.size() >= 2);
  CHECK(merges[0] == BytePair{"a", "a"});
  CHECK(merges == reference_train(texts, 300, 2));
}

TEST_CASE("train_bpe: <|endoftext|> separates text and is never learned from") {
  const std::vector<std::string_view> texts = {"ab<|endoftext|>ab<|endoftext|>", "<|endoftext|>ab"};
  const BpeTokenizer tok = data::train_bpe(texts, 300, 1);
  for (const BytePair& m : merges_as_bytes(tok)) {
    CHECK(m.first.find('<') == std::string::npos);
    CHECK(m.second.find('|') == std::string::npos);
  }
  CHECK(merges_as_bytes(tok) == std::vector<BytePair>{{"a", "b"}});
  CHECK(tok.encode("ab<|endoftext|>") == Ids{256, 257});
}

TEST_CASE("train_bpe: incremental counts agree with recounting from scratch") {
  std::mt19937 rng(3);
  const char* alphabet[] = {"a", "b", "c", " ", " ", "\n", "ab", "ba", "'s", "\xc3\xa9", "1"};
  for (int trial = 0; trial < 6; ++trial) {
    std::string text;
    for (int i = 0; i < 1500; ++i) text += alphabet[rng() % std::size(alphabet)];
    const std::vector<std::string_view> texts = {text};
    const int64_t min_count = trial % 2 == 0 ? 2 : 1;
    CAPTURE(trial);
    CHECK(merges_as_bytes(data::train_bpe(texts, 256 + 120, min_count)) ==
          reference_train(texts, 256 + 120, min_count));
  }
}

TEST_CASE("train_bpe: result does not depend on document order; round trips any bytes") {
  const std::vector<std::string_view> texts = {"the cat sat on the mat\n", "the dog sat on the log\n",
                                               "that is that, isn't it? 12 345 6789\n"};
  std::vector<std::string_view> reversed(texts.rbegin(), texts.rend());
  const BpeTokenizer tok = data::train_bpe(texts, 300);
  CHECK(merges_as_bytes(tok) == merges_as_bytes(data::train_bpe(reversed, 300)));
  std::mt19937 rng(5);
  for (int trial = 0; trial < 50; ++trial) {
    std::string bytes(rng() % 200, '\0');
    for (char& c : bytes) c = static_cast<char>(rng() % 256);
    bytes += " the cat isn't here";
    CHECK(tok.decode(tok.encode(bytes)) == bytes);
  }
}

TEST_CASE("train_bpe: a trained tokenizer saves and loads to identical encodings") {
  TempDir dir;
  const std::vector<std::string_view> texts = {
      "In the beginning God created the heaven and the earth. And the earth was without form, "
      "and void; and darkness was upon the face of the deep.\n\n  Caf\xc3\xa9 na\xc3\xafve 1234"};
  const BpeTokenizer tok = data::train_bpe(texts, 320, 1);
  tok.save(dir / "vocab.json", dir / "merges.txt");
  const BpeTokenizer loaded = BpeTokenizer::load(dir / "vocab.json", dir / "merges.txt");
  CHECK(loaded.merges() == tok.merges());
  CHECK(loaded.end_of_text() == tok.end_of_text());
  const std::string probe = std::string(texts[0]) + "<|endoftext|> the earth\xff";
  CHECK(loaded.encode(probe) == tok.encode(probe));
  CHECK(loaded.decode(loaded.encode(probe)) == probe);
}

TEST_CASE("train_bpe: argument errors") {
  const std::vector<std::string_view> texts = {"abc"};
  CHECK_THROWS_WITH_AS(data::train_bpe(texts, 256), doctest::Contains("vocab_size 256 is too small"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(data::train_bpe(texts, 300, 0), doctest::Contains("min_pair_count"),
                       engine::Error);
}
