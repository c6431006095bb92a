// Text corpora (data/text_corpus.h): the BPE tokenizer opened or trained once, split token files,
// and the batcher of training blocks.
#include "data/text_corpus.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <span>
#include <string_view>
#include <utility>

#include "data/atomic_file.h"
#include "data/bpe_trainer.h"
#include "engine/error.h"
#include "engine/rng.h"

namespace data {

namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  ENGINE_CHECK(in, "TextCorpus: cannot read ", path.string());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Where the tokenizer of corpus `dir` lives: its own vocab.json when it has one (token files in
// <dir>/tokens), else the one trained for `vocab_size` (token files beside it).
struct TokenizerFiles {
  fs::path vocab, merges, cache_dir;
  bool trained;
};

TokenizerFiles tokenizer_files(const fs::path& dir, int64_t vocab_size) {
  if (fs::exists(dir / "vocab.json") && fs::exists(dir / "merges.txt"))
    return {dir / "vocab.json", dir / "merges.txt", dir / "tokens", false};
  const fs::path cache_dir = dir / ("bpe_" + std::to_string(vocab_size));
  return {cache_dir / "vocab.json", cache_dir / "merges.txt", cache_dir, true};
}

// What a trained tokenizer was trained on: the train split's size and modification time, kept in
// <cache>/trained_on.txt. A cached tokenizer is reused only while they match.
std::string train_split_stamp(const fs::path& train) {
  return engine::detail::concat(train.filename().string(), " ", fs::file_size(train), " bytes, modified at ",
                                fs::last_write_time(train).time_since_epoch().count(), "\n");
}

// The directory's own tokenizer when it has one, else the cached one when it was trained on the
// train split as it is now (a cache from before these stamps counts when it has the requested
// size), else one trained on the train split (saved, with its stamp).
BpeTokenizer open_tokenizer(const fs::path& dir, int64_t vocab_size, fs::path& cache_dir) {
  const TokenizerFiles files = tokenizer_files(dir, vocab_size);
  cache_dir = files.cache_dir;
  fs::create_directories(cache_dir);
  if (!files.trained) return BpeTokenizer::load(files.vocab, files.merges);
  const fs::path train = corpus_split_path(dir, "train"), stamp = cache_dir / "trained_on.txt";
  const std::string source = train_split_stamp(train);
  if (fs::exists(files.vocab) && fs::exists(files.merges)) {
    if (fs::exists(stamp)) {
      if (read_file(stamp) == source) return BpeTokenizer::load(files.vocab, files.merges);
    } else {
      BpeTokenizer cached = BpeTokenizer::load(files.vocab, files.merges);
      if (cached.vocab_size() == vocab_size) {
        write_file_atomic(stamp, source);
        return cached;
      }
    }
  }
  const std::string text = read_file(train);
  ENGINE_CHECK(!text.empty(), "TextCorpus: ", train.string(), " is empty: there is nothing to train a tokenizer on");
  const std::string_view texts[] = {text};
  BpeTokenizer tokenizer = train_bpe(texts, vocab_size);
  tokenizer.save(files.vocab, files.merges);
  write_file_atomic(stamp, source);
  return tokenizer;
}

}  // namespace

fs::path corpus_split_path(const fs::path& dir, const std::string& split) {
  ENGINE_CHECK(split == "train" || split == "valid" || split == "test",
               "TextCorpus: unknown split '", split, "' (train, valid, test)");
  for (const fs::path& candidate : {dir / (split + ".txt"), dir / ("wiki." + split + ".raw")})
    if (fs::exists(candidate)) return candidate;
  throw engine::Error(
      engine::detail::concat("TextCorpus: ", dir.string(), " has neither ", split, ".txt nor wiki.", split, ".raw"));
}

TextCorpus::TextCorpus(const fs::path& dir, int64_t vocab_size)
    : tokenizer_(open_tokenizer(dir, vocab_size, cache_dir_)) {
  for (const std::string& split : {std::string("train"), std::string("valid"), std::string("test")}) {
    const fs::path source = corpus_split_path(dir, split);
    const fs::path tokens = cache_dir_ / (split + ".tokens");
    // Token files older than their text or than the tokenizer (retrained since) are encoded again.
    bool cached = fs::exists(tokens) && fs::last_write_time(tokens) >= fs::last_write_time(source) &&
                  fs::last_write_time(tokens) >= fs::last_write_time(tokenizer_files(dir, vocab_size).vocab);
    if (cached) cached = TokenFile(tokens).vocab_size() == tokenizer_.vocab_size();
    if (!cached) {
      const std::vector<TokenId> ids = tokenizer_.encode_ordinary(read_file(source));
      write_token_file(tokens, ids, tokenizer_.vocab_size());
    }
    splits_.emplace(split, TokenFile(tokens));
  }
}

const TokenFile& TextCorpus::split(const std::string& name) const {
  auto it = splits_.find(name);
  ENGINE_CHECK(it != splits_.end(), "TextCorpus: unknown split '", name, "' (train, valid, test)");
  return it->second;
}

BlockBatcher::BlockBatcher(const TokenFile& tokens, int64_t block_length, int64_t batch_size, uint64_t seed,
                           BatchShard shard)
    : tokens_(tokens), block_length_(block_length), batch_size_(batch_size),
      blocks_(block_length > 0 ? (tokens.size() - 1) / block_length : 0), seed_(seed), shard_(shard),
      shard_rows_(shard.rows(batch_size, "BlockBatcher")) {
  ENGINE_CHECK(block_length > 0 && batch_size > 0,
               "BlockBatcher: block length and batch size must be positive (got ", block_length, ", "
                                                                                 , batch_size, ")");
  ENGINE_CHECK(blocks_ > 0, "BlockBatcher: ", tokens.path().string(), " has ", tokens.size()
                                            , " tokens, fewer than one block of ", block_length, " + 1");
  inputs_.resize(size_t(shard_rows_ * block_length));
  targets_.resize(inputs_.size());
  window_.resize(size_t(block_length + 1));
  scored_.assign(window_.size(), 1);
  build_order(0);
}

void BlockBatcher::build_order(int64_t epoch) {
  order_.resize(size_t(blocks_));
  for (int64_t i = 0; i < blocks_; ++i) order_[size_t(i)] = i;
  engine::Generator gen(seed_ * 0x9E3779B97F4A7C15ull + uint64_t(epoch) + 1);
  for (int64_t i = blocks_ - 1; i > 0; --i) std::swap(order_[size_t(i)], order_[gen.randint(uint64_t(i + 1))]);
}

void BlockBatcher::set_position(const BatcherPosition& position) {
  ENGINE_CHECK(position.epoch >= 0 && position.block >= 0 && position.block <= blocks_,
               "BlockBatcher: position (epoch ", position.epoch, ", block ", position.block
                                               , ") is outside an epoch of ", blocks_, " blocks");
  position_ = position;
  build_order(position.epoch);
}

TokenBatch BlockBatcher::next() {
  const size_t L = size_t(block_length_);
  const int64_t first = shard_.index * shard_rows_;
  for (int64_t b = 0; b < batch_size_; ++b) {
    if (position_.block == blocks_) set_position({position_.epoch + 1, 0});
    const uint64_t serial = uint64_t(position_.epoch * blocks_ + position_.block);
    const int64_t start = order_[size_t(position_.block++)] * block_length_;
    const int64_t row = b - first;
    if (row < 0 || row >= shard_rows_) continue;  // another rank's block
    tokens_.read(start, std::span<int64_t>(window_));
    if (copy_mixer_) copy_mixer_->apply(serial, window_, scored_);
    std::copy(window_.begin(), window_.begin() + L, inputs_.begin() + row * L);
    for (size_t i = 0; i < L; ++i)
      targets_[size_t(row) * L + i] = scored_[i + 1] ? window_[i + 1] : kIgnoredTarget;
  }
  return {engine::Tensor::from_indices(inputs_, {shard_rows_, block_length_}),
          engine::Tensor::from_indices(targets_, {shard_rows_, block_length_})};
}

}  // namespace data
