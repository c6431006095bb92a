// Construction (validation, merge table) and encoding/decoding. Loading and saving GPT-2 files is
// in bpe_tokenizer_files.cpp.
#include "data/bpe_tokenizer.h"

#include <algorithm>
#include <mutex>

#include "data/byte_unicode.h"
#include "data/pretokenizer.h"
#include "engine/error.h"

namespace data {

namespace {

uint64_t pair_key(TokenId left, TokenId right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

// Token text as GPT-2 writes it, quoted, for error messages.
// (Built with += : GCC 12 gives a false -Wrestrict warning for "'" + std::string&&.)
std::string quoted(const std::string& bytes) {
  std::string text = "'";
  text += bytes_to_token_text(bytes);
  text += '\'';
  return text;
}

// String hashing that lets the cache be probed with a string_view without building a string.
struct TransparentHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

}  // namespace

// Pieces already encoded, shared by all threads that encode with this tokenizer. Bounded: cleared
// when full, which keeps memory flat on corpora with many distinct pieces.
struct BpeTokenizer::WordCache {
  static constexpr size_t kMaxEntries = size_t{1} << 18;
  std::mutex mutex;
  std::unordered_map<std::string, std::vector<TokenId>, TransparentHash, std::equal_to<>> pieces;
};

BpeTokenizer::BpeTokenizer(std::vector<std::string> token_bytes, std::vector<BpeMerge> merges,
                           std::optional<TokenId> end_of_text)
    : token_bytes_(std::move(token_bytes)),
      merges_(std::move(merges)),
      end_of_text_(end_of_text),
      cache_(std::make_unique<WordCache>()) {
  const auto vocab = static_cast<TokenId>(token_bytes_.size());
  ENGINE_CHECK(token_bytes_.size() < (size_t{1} << 31), "BpeTokenizer: vocabulary of ",
               token_bytes_.size(), " tokens is too large");
  std::unordered_map<std::string_view, TokenId> id_of;
  id_of.reserve(token_bytes_.size());
  for (TokenId id = 0; id < vocab; ++id) {
    const std::string& bytes = token_bytes_[id];
    ENGINE_CHECK(!bytes.empty(), "BpeTokenizer: token ", id, " is empty");
    const auto [it, inserted] = id_of.emplace(bytes, id);
    ENGINE_CHECK(inserted, "BpeTokenizer: tokens ", it->second, " and ", id, " are both ",
                 quoted(bytes));
  }
  for (int byte = 0; byte < 256; ++byte) {
    const auto it = id_of.find(std::string_view(std::string(1, static_cast<char>(byte))));
    ENGINE_CHECK(it != id_of.end(), "BpeTokenizer: the vocabulary has no token for byte ", byte,
                 " (", quoted(std::string(1, static_cast<char>(byte))),
                 "); a byte-level vocabulary needs all 256");
    byte_tokens_[byte] = it->second;
  }
  if (end_of_text_) {
    const TokenId id = *end_of_text_;
    ENGINE_CHECK(id >= 0 && id < vocab && token_bytes_[id] == kEndOfText,
                 "BpeTokenizer: end-of-text id ", id, " is not the token ", kEndOfText);
  }
  merge_rules_.reserve(merges_.size());
  for (size_t rank = 0; rank < merges_.size(); ++rank) {
    const BpeMerge merge = merges_[rank];
    ENGINE_CHECK(merge.left >= 0 && merge.left < vocab && merge.right >= 0 && merge.right < vocab,
                 "BpeTokenizer: merge ", rank, " (", merge.left, ", ", merge.right,
                 ") refers to a token outside [0, ", vocab, ")");
    const std::string merged = token_bytes_[merge.left] + token_bytes_[merge.right];
    const auto result = id_of.find(std::string_view(merged));
    ENGINE_CHECK(result != id_of.end(), "BpeTokenizer: merge ", rank, " of ",
                 quoted(token_bytes_[merge.left]), " and ", quoted(token_bytes_[merge.right]),
                 " gives ", quoted(merged), ", which is not in the vocabulary");
    const auto [it, inserted] = merge_rules_.emplace(
        pair_key(merge.left, merge.right), MergeRule{static_cast<int32_t>(rank), result->second});
    ENGINE_CHECK(inserted, "BpeTokenizer: merge ", rank, " of ", quoted(token_bytes_[merge.left]),
                 " and ", quoted(token_bytes_[merge.right]), " repeats merge ", it->second.rank);
  }
}

BpeTokenizer::BpeTokenizer(BpeTokenizer&&) noexcept = default;
BpeTokenizer& BpeTokenizer::operator=(BpeTokenizer&&) noexcept = default;
BpeTokenizer::~BpeTokenizer() = default;

std::vector<TokenId> BpeTokenizer::encode(std::string_view text) const {
  std::vector<TokenId> ids;
  ids.reserve(text.size() / 3 + 1);
  if (!end_of_text_) {
    encode_ordinary_append(text, ids);
    return ids;
  }
  for (size_t begin = 0; begin <= text.size();) {
    const size_t special = text.find(kEndOfText, begin);
    encode_ordinary_append(text.substr(begin, special - begin), ids);
    if (special == std::string_view::npos) break;
    ids.push_back(*end_of_text_);
    begin = special + kEndOfText.size();
  }
  return ids;
}

std::vector<TokenId> BpeTokenizer::encode_ordinary(std::string_view text) const {
  std::vector<TokenId> ids;
  ids.reserve(text.size() / 3 + 1);
  encode_ordinary_append(text, ids);
  return ids;
}

void BpeTokenizer::encode_ordinary_append(std::string_view text, std::vector<TokenId>& ids) const {
  for_each_pretoken(text, [&](std::string_view piece) { encode_piece(piece, ids); });
}

std::string BpeTokenizer::decode(std::span<const TokenId> ids) const {
  std::string bytes;
  for (const TokenId id : ids) {
    ENGINE_CHECK(id >= 0 && id < vocab_size(), "BpeTokenizer::decode: token id ", id,
                 " is outside the vocabulary [0, ", vocab_size(), ")");
    bytes += token_bytes_[id];
  }
  return bytes;
}

void BpeTokenizer::encode_piece(std::string_view piece, std::vector<TokenId>& ids) const {
  if (piece.size() == 1) {
    ids.push_back(byte_tokens_[static_cast<uint8_t>(piece[0])]);
    return;
  }
  {
    std::lock_guard lock(cache_->mutex);
    const auto it = cache_->pieces.find(piece);
    if (it != cache_->pieces.end()) {
      ids.insert(ids.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = ids.size();
  merge_piece(piece, ids);
  std::lock_guard lock(cache_->mutex);
  if (cache_->pieces.size() >= WordCache::kMaxEntries) cache_->pieces.clear();
  cache_->pieces.emplace(std::string(piece), std::vector<TokenId>(ids.begin() + first, ids.end()));
}

// GPT-2's bpe() in O(n log n): the piece's tokens form a linked list and the candidate merges
// (adjacent pairs that have a rule) a min-heap on (rank, position). GPT-2 applies the lowest-rank
// pair to all its occurrences, left to right, before looking at the pairs this creates; so pairs
// created while a rank is being applied wait in `deferred` until that rank's occurrences are done
// (this matters only when a merge's result forms a pair of lower rank, which trained merges never
// do, but hand-written ones may). A popped candidate whose tokens have since changed is skipped.
void BpeTokenizer::merge_piece(std::string_view piece, std::vector<TokenId>& ids) const {
  struct Symbol {
    TokenId id;  // -1 once merged into its left neighbour
    int32_t prev;
    int32_t next;  // -1 at the ends
  };
  struct Candidate {
    int32_t rank;
    int32_t pos;
    TokenId left;
    TokenId right;
    TokenId result;
  };
  const auto later = [](const Candidate& a, const Candidate& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  };
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Candidate> heap;
  thread_local std::vector<Candidate> deferred;
  const auto n = static_cast<int32_t>(piece.size());
  symbols.resize(n);
  for (int32_t i = 0; i < n; ++i)
    symbols[i] = {byte_tokens_[static_cast<uint8_t>(piece[i])], i - 1, i + 1 < n ? i + 1 : -1};

  const auto add_candidate = [&](int32_t pos, std::vector<Candidate>& into) {
    const int32_t next = symbols[pos].next;
    if (next < 0) return;
    const auto rule = merge_rules_.find(pair_key(symbols[pos].id, symbols[next].id));
    if (rule == merge_rules_.end()) return;
    into.push_back({rule->second.rank, pos, symbols[pos].id, symbols[next].id, rule->second.result});
  };
  heap.clear();
  deferred.clear();
  for (int32_t i = 0; i + 1 < n; ++i) add_candidate(i, heap);
  std::make_heap(heap.begin(), heap.end(), later);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const Candidate candidate = heap.back();
    heap.pop_back();
    Symbol& symbol = symbols[candidate.pos];
    if (symbol.id == candidate.left && symbol.next >= 0 &&
        symbols[symbol.next].id == candidate.right) {
      Symbol& absorbed = symbols[symbol.next];
      symbol.id = candidate.result;
      symbol.next = absorbed.next;
      if (absorbed.next >= 0) symbols[absorbed.next].prev = candidate.pos;
      absorbed.id = -1;
      if (symbol.prev >= 0) add_candidate(symbol.prev, deferred);
      add_candidate(candidate.pos, deferred);
    }
    if (heap.empty() || heap.front().rank != candidate.rank) {
      for (const Candidate& waiting : deferred) {
        heap.push_back(waiting);
        std::push_heap(heap.begin(), heap.end(), later);
      }
      deferred.clear();
    }
  }
  // The first symbol is never absorbed (only right-hand symbols are), so the list starts at 0.
  for (int32_t i = 0; i >= 0; i = symbols[i].next) ids.push_back(symbols[i].id);
}

}  // namespace data
