// Text corpora for language modelling: a directory of plain-text splits, tokenised once with
// byte-level BPE into token files (data/token_file.h), and a batcher of training blocks.
//
// Layouts of a corpus directory (the first one found is used):
//   train.txt, valid.txt, test.txt                       (scripts/prepare_corpora.sh writes these)
//   wiki.train.raw, wiki.valid.raw, wiki.test.raw        (WikiText-103/-2 raw)
// Tokenizer: vocab.json + merges.txt in the directory when present (e.g. GPT-2's own files), with
// the token files cached in <dir>/tokens/; otherwise one is trained on the train split to the
// requested vocabulary size and saved, with the token files, in <dir>/bpe_<V>/. Each split is the
// whole file encoded as ordinary text (no end-of-text token added), as the reference concatenates
// its rows. Cached files are reused when their vocabulary size matches.
//
//   B = batch, L = block length, N = tokens of a split
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "data/batch_shard.h"
#include "data/bpe_tokenizer.h"
#include "data/copy_tasks.h"
#include "data/token_file.h"
#include "engine/tensor.h"

namespace data {

// The text file of `split` ("train", "valid" or "test") in corpus `dir`; throws naming the
// directory when neither layout has it.
std::filesystem::path corpus_split_path(const std::filesystem::path& dir, const std::string& split);

class TextCorpus {
 public:
  // Opens (tokenising on first use) the three splits of `dir`. `vocab_size` is used only when
  // the directory has no tokenizer files of its own.
  TextCorpus(const std::filesystem::path& dir, int64_t vocab_size);

  const BpeTokenizer& tokenizer() const { return tokenizer_; }
  // The tokens of "train", "valid" or "test".
  const TokenFile& split(const std::string& name) const;
  // Where the tokenizer and token files live.
  const std::filesystem::path& cache_dir() const { return cache_dir_; }

 private:
  std::filesystem::path cache_dir_;  // before tokenizer_: opening the tokenizer sets it
  BpeTokenizer tokenizer_;
  std::map<std::string, TokenFile> splits_;
};

// Where a BlockBatcher is in its stream: blocks already served in the current epoch.
struct BatcherPosition {
  int64_t epoch = 0;
  int64_t block = 0;
  bool operator==(const BatcherPosition&) const = default;
};

struct TokenBatch {
  engine::Tensor inputs;   // (B, L) i64
  engine::Tensor targets;  // (B, L) i64, the next token of each input (kIgnoredTarget: not scored)
};

// Training batches: the token stream cut into non-overlapping blocks of L inputs (block i reads
// tokens [i·L, i·L + L] so its targets are the stream's next tokens; the last partial block is
// dropped), served in an order shuffled per epoch. The order of epoch e depends only on (seed, e),
// so a BatcherPosition is all a checkpoint needs to continue the same sequence. With a CopyMixer,
// each block is rewritten as the mixer draws for its serial number in the stream
// (epoch * blocks_per_epoch + block), so the mix too is continued exactly.
class BlockBatcher {
 public:
  // With a `shard`, next() returns only the shard's rows of each batch of `batch_size` blocks.
  BlockBatcher(const TokenFile& tokens, int64_t block_length, int64_t batch_size, uint64_t seed,
               BatchShard shard = {});

  // The next B blocks (continuing into the next epoch when this one runs out), or the shard's
  // B/count of them.
  TokenBatch next();

  // Mixes synthetic copying sequences (data/copy_tasks.h) into the blocks served from now on.
  void mix_copy_tasks(const CopyMixer& mixer) { copy_mixer_ = mixer; }

  int64_t blocks_per_epoch() const { return blocks_; }
  BatcherPosition position() const { return position_; }
  void set_position(const BatcherPosition& position);

 private:
  // The shuffled block order of `epoch`.
  void build_order(int64_t epoch);

  const TokenFile& tokens_;
  int64_t block_length_, batch_size_, blocks_;
  uint64_t seed_;
  BatchShard shard_;
  int64_t shard_rows_;
  BatcherPosition position_;
  std::vector<int64_t> order_;  // (blocks) of position_.epoch
  std::optional<CopyMixer> copy_mixer_;
  std::vector<int64_t> inputs_, targets_, window_;
  std::vector<uint8_t> scored_;  // (L + 1) which tokens of window_ are scored targets
};

}  // namespace data
