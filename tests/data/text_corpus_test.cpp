// TextCorpus and BlockBatcher on a tiny synthetic corpus: tokenizer trained and cached, token files
// decoding back to the split texts, both directory layouts, and the batcher's blocks, shuffling
// and resumable position.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "data/temp_dir.h"
#include "data/text_corpus.h"
#include "engine/error.h"

namespace {

std::string synthetic_text(int lines, int salt) {
  std::string text;
  for (int i = 0; i < lines; ++i)
    text += "line " + std::to_string(i * 7 + salt) + ": the quick brown fox jumps over the lazy dog\n";
  return text;
}

std::vector<data::TokenId> all_tokens(const data::TokenFile& file) {
  std::vector<data::TokenId> ids(size_t(file.size()));
  file.read(0, std::span<data::TokenId>(ids));
  return ids;
}

std::vector<int64_t> values(const engine::Tensor& t) { return t.to_vector<int64_t>(); }

}  // namespace

TEST_CASE("TextCorpus trains a tokenizer on the train split and caches token files") {
  TempDir dir;
  write_text_file(dir / "train.txt", synthetic_text(40, 1));
  write_text_file(dir / "valid.txt", synthetic_text(5, 2));
  write_text_file(dir / "test.txt", synthetic_text(6, 3));
  {
    data::TextCorpus corpus(dir.path(), 300);
    CHECK(corpus.tokenizer().vocab_size() == 300);
    CHECK(std::filesystem::exists(dir / "bpe_300/vocab.json"));
    CHECK(std::filesystem::exists(dir / "bpe_300/merges.txt"));
    for (const auto& [split, salt, lines] : {std::tuple{"train", 1, 40}, {"valid", 2, 5}, {"test", 3, 6}}) {
      const auto ids = all_tokens(corpus.split(split));
      CHECK(corpus.tokenizer().decode(ids) == synthetic_text(lines, salt));
      CHECK(corpus.split(split).vocab_size() == 300);
    }
    CHECK(corpus.split("train").size() < int64_t(synthetic_text(40, 1).size()) / 3);
  }
  const auto written = std::filesystem::last_write_time(dir / "bpe_300/train.tokens");
  data::TextCorpus again(dir.path(), 300);
  CHECK(std::filesystem::last_write_time(dir / "bpe_300/train.tokens") == written);
  CHECK(again.tokenizer().decode(all_tokens(again.split("valid"))) == synthetic_text(5, 2));
}

TEST_CASE("TextCorpus retrains a cached tokenizer when the train split changed, and refuses an empty one") {
  TempDir dir;
  write_text_file(dir / "train.txt", "");
  write_text_file(dir / "valid.txt", synthetic_text(5, 2));
  write_text_file(dir / "test.txt", synthetic_text(6, 3));
  CHECK_THROWS_WITH_AS(data::TextCorpus(dir.path(), 300), doctest::Contains("train.txt is empty"), engine::Error);

  // A cache from before the stamps, trained on the empty split: 257 tokens where 300 were asked.
  std::vector<std::string> bytes;
  for (int b = 0; b < 256; ++b) bytes.emplace_back(1, char(b));
  bytes.emplace_back(data::kEndOfText);
  std::filesystem::create_directories(dir / "bpe_300");
  data::BpeTokenizer(bytes, {}, 256).save(dir / "bpe_300/vocab.json", dir / "bpe_300/merges.txt");
  write_text_file(dir / "train.txt", synthetic_text(40, 1));
  {
    data::TextCorpus corpus(dir.path(), 300);
    CHECK(corpus.tokenizer().vocab_size() == 300);
    CHECK(corpus.tokenizer().decode(all_tokens(corpus.split("valid"))) == synthetic_text(5, 2));
    CHECK(corpus.split("valid").size() < int64_t(synthetic_text(5, 2).size()) / 3);  // merged, not bytes
  }
  // The train split changes again: the stamp no longer matches, the tokenizer and every token file
  // are made again (valid.txt is unchanged but was encoded with the old tokenizer).
  const data::BpeTokenizer before = data::BpeTokenizer::load(dir / "bpe_300/vocab.json", dir / "bpe_300/merges.txt");
  write_text_file(dir / "train.txt", "zebra quagga okapi\n" + synthetic_text(3, 9));
  data::TextCorpus changed(dir.path(), 300);
  CHECK(changed.tokenizer().merges() != before.merges());
  CHECK(changed.tokenizer().decode(all_tokens(changed.split("valid"))) == synthetic_text(5, 2));
}

TEST_CASE("TextCorpus reads the WikiText raw layout and reports a missing split") {
  TempDir dir;
  write_text_file(dir / "wiki.train.raw", synthetic_text(20, 4));
  write_text_file(dir / "wiki.valid.raw", synthetic_text(3, 5));
  CHECK_THROWS_WITH_AS(data::TextCorpus(dir.path(), 280), doctest::Contains("neither test.txt nor wiki.test.raw"),
                       engine::Error);
  write_text_file(dir / "wiki.test.raw", synthetic_text(3, 6));
  data::TextCorpus corpus(dir.path(), 280);
  CHECK(corpus.tokenizer().decode(all_tokens(corpus.split("test"))) == synthetic_text(3, 6));
  CHECK_THROWS_WITH_AS(corpus.split("dev"), doctest::Contains("unknown split 'dev'"), engine::Error);
}

TEST_CASE("BlockBatcher serves every non-overlapping block once per epoch, shuffled, resumably") {
  TempDir dir;
  std::vector<data::TokenId> stream(103);
  for (size_t i = 0; i < stream.size(); ++i) stream[i] = data::TokenId((i * 5 + 3) % 97);
  data::write_token_file(dir / "s.tokens", stream, 97);
  data::TokenFile file(dir / "s.tokens");
  const int64_t L = 10, B = 3;
  data::BlockBatcher batcher(file, L, B, 42);
  CHECK(batcher.blocks_per_epoch() == 10);  // (103 - 1) / 10, the partial block dropped

  // Four batches of 3 = one epoch of 10 blocks and 2 of the next.
  std::vector<int64_t> starts;
  for (int i = 0; i < 4; ++i) {
    const data::TokenBatch batch = batcher.next();
    CHECK(batch.inputs.shape() == engine::Shape{B, L});
    const auto in = values(batch.inputs), tg = values(batch.targets);
    for (int64_t b = 0; b < B; ++b) {
      const int64_t first = in[size_t(b * L)];
      const auto it = std::find(stream.begin(), stream.end(), data::TokenId(first));
      const int64_t start = it - stream.begin();
      CHECK(start % L == 0);
      starts.push_back(start / L);
      for (int64_t t = 0; t < L; ++t) {
        CHECK(in[size_t(b * L + t)] == stream[size_t(start + t)]);
        CHECK(tg[size_t(b * L + t)] == stream[size_t(start + t + 1)]);
      }
    }
  }
  const std::set<int64_t> first_epoch(starts.begin(), starts.begin() + 10);
  CHECK(first_epoch.size() == 10);
  CHECK(!std::is_sorted(starts.begin(), starts.begin() + 10));
  CHECK(batcher.position() == data::BatcherPosition{1, 2});
  CHECK(!std::equal(starts.begin() + 10, starts.end(), starts.begin()));

  // A batcher set to a saved position serves the same batches as the original.
  const data::BatcherPosition saved = batcher.position();
  const auto expected = values(batcher.next().inputs);
  data::BlockBatcher resumed(file, L, B, 42);
  resumed.set_position(saved);
  CHECK(values(resumed.next().inputs) == expected);
  CHECK_THROWS_WITH_AS(data::BlockBatcher(file, 200, 1, 0), doctest::Contains("fewer than one block"),
                       engine::Error);
}

TEST_CASE("BlockBatcher shards: the ranks' rows of every batch are the whole batch, in order") {
  TempDir dir;
  std::vector<data::TokenId> stream(103);
  for (size_t i = 0; i < stream.size(); ++i) stream[i] = data::TokenId((i * 5 + 3) % 97);
  data::write_token_file(dir / "s.tokens", stream, 97);
  data::TokenFile file(dir / "s.tokens");
  const int64_t L = 10, B = 4;
  data::BlockBatcher whole(file, L, B, 42);
  data::BlockBatcher first(file, L, B, 42, {0, 2}), second(file, L, B, 42, {1, 2});
  for (int i = 0; i < 4; ++i) {  // across the epoch boundary (10 blocks)
    const data::TokenBatch all = whole.next(), a = first.next(), b = second.next();
    CHECK(a.inputs.shape() == engine::Shape{B / 2, L});
    std::vector<int64_t> joined = values(a.targets), tail = values(b.targets);
    joined.insert(joined.end(), tail.begin(), tail.end());
    CHECK(joined == values(all.targets));
    CHECK(first.position() == whole.position());
  }
  CHECK_THROWS_WITH_AS(data::BlockBatcher(file, L, 3, 0, {0, 2}), doctest::Contains("does not split into 2"),
                       engine::Error);
}
