// BPE training with incremental pair counts. State: every distinct piece ("word") as its current
// token sequence with its frequency; the count of every adjacent pair over all words; for each pair,
// the words it occurs in; and a max-heap of (count, pair). Merging a pair rewrites only the words
// that contain it and adjusts only the counts of the pairs next to each occurrence, so a merge costs
// time proportional to its occurrences, not to the corpus. Heap entries are not updated in place:
// counts of existing pairs only fall (pairs with the new token are pushed after each merge), so an
// entry whose count no longer matches is re-pushed with the current count when it reaches the top.
#include "data/bpe_trainer.h"

#include <algorithm>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "data/byte_unicode.h"
#include "data/pretokenizer.h"
#include "engine/error.h"

namespace data {

namespace {

uint64_t pair_key(TokenId left, TokenId right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}
TokenId left_of(uint64_t key) { return static_cast<TokenId>(key >> 32); }
TokenId right_of(uint64_t key) { return static_cast<TokenId>(key & 0xFFFFFFFFu); }

struct HeapEntry {
  int64_t count;
  uint64_t pair;
};

// Distinct pieces of all texts with their frequencies; views into the texts.
std::unordered_map<std::string_view, int64_t> count_pieces(std::span<const std::string_view> texts) {
  std::unordered_map<std::string_view, int64_t> counts;
  for (const std::string_view text : texts) {
    for (size_t begin = 0; begin < text.size();) {
      const size_t special = std::min(text.find(kEndOfText, begin), text.size());
      for_each_pretoken(text.substr(begin, special - begin),
                        [&](std::string_view piece) { ++counts[piece]; });
      begin = special + (special < text.size() ? kEndOfText.size() : 0);
    }
  }
  return counts;
}

class Trainer {
 public:
  Trainer(std::span<const std::string_view> texts, int64_t min_pair_count)
      : min_pair_count_(min_pair_count), heap_order_{&token_bytes_} {
    TokenId byte_token[256];
    for (const uint8_t byte : bytes_in_code_point_order()) {
      byte_token[byte] = add_token(std::string(1, static_cast<char>(byte)));
    }
    for (const auto& [piece, count] : count_pieces(texts)) {
      if (piece.size() < 2) continue;
      std::vector<TokenId> symbols(piece.size());
      for (size_t i = 0; i < piece.size(); ++i)
        symbols[i] = byte_token[static_cast<uint8_t>(piece[i])];
      words_.push_back(std::move(symbols));
      word_counts_.push_back(count);
    }
    for (uint32_t w = 0; w < words_.size(); ++w) {
      const std::vector<TokenId>& symbols = words_[w];
      for (size_t i = 0; i + 1 < symbols.size(); ++i) {
        const uint64_t pair = pair_key(symbols[i], symbols[i + 1]);
        pair_counts_[pair] += word_counts_[w];
        note_occurrence(pair, w);
      }
    }
    for (const auto& [pair, count] : pair_counts_) {
      if (count >= min_pair_count_) heap_.push_back({count, pair});
    }
    std::make_heap(heap_.begin(), heap_.end(), heap_order_);
  }

  // Learns merges until the vocabulary plus <|endoftext|> has `vocab_size` tokens.
  BpeTokenizer run(int64_t vocab_size) && {
    while (static_cast<int64_t>(token_bytes_.size()) + 1 < vocab_size) {
      const std::optional<uint64_t> best = pop_best_pair();
      if (!best) break;
      merge(*best);
    }
    const auto end_of_text = add_token(std::string(kEndOfText));
    return BpeTokenizer(std::move(token_bytes_), std::move(merges_), end_of_text);
  }

 private:
  // Max-heap order: higher count first; on equal counts the bytewise smaller (left, right) first.
  struct HeapOrder {
    const std::vector<std::string>* token_bytes;
    bool operator()(const HeapEntry& a, const HeapEntry& b) const {
      if (a.count != b.count) return a.count < b.count;
      const std::string& a_left = (*token_bytes)[left_of(a.pair)];
      const std::string& b_left = (*token_bytes)[left_of(b.pair)];
      if (a_left != b_left) return a_left > b_left;
      return (*token_bytes)[right_of(a.pair)] > (*token_bytes)[right_of(b.pair)];
    }
  };

  TokenId add_token(std::string bytes) {
    const auto id = static_cast<TokenId>(token_bytes_.size());
    const auto [it, inserted] = id_of_bytes_.emplace(bytes, id);
    if (inserted) token_bytes_.push_back(std::move(bytes));
    return it->second;
  }

  void note_occurrence(uint64_t pair, uint32_t word) {
    std::vector<uint32_t>& words = words_of_pair_[pair];
    if (words.empty() || words.back() != word) words.push_back(word);
  }

  int64_t count_of(uint64_t pair) const {
    const auto it = pair_counts_.find(pair);
    return it == pair_counts_.end() ? 0 : it->second;
  }

  // The most frequent pair not merged yet, if one occurs at least min_pair_count times.
  std::optional<uint64_t> pop_best_pair() {
    while (!heap_.empty()) {
      std::pop_heap(heap_.begin(), heap_.end(), heap_order_);
      const HeapEntry top = heap_.back();
      heap_.pop_back();
      const int64_t current = count_of(top.pair);
      if (current != top.count) {
        if (current >= min_pair_count_) push(top.pair, current);
        continue;
      }
      // A pair merged before can reappear only through a merge that re-created one of its tokens'
      // bytes; merging it twice would be a duplicate rule, so it is left as it is.
      if (merged_.contains(top.pair)) continue;
      return top.pair;
    }
    return std::nullopt;
  }

  void push(uint64_t pair, int64_t count) {
    heap_.push_back({count, pair});
    std::push_heap(heap_.begin(), heap_.end(), heap_order_);
  }

  // Records the merge of `pair`, rewrites the words that contain it and updates the pair counts.
  void merge(uint64_t pair) {
    const TokenId left = left_of(pair);
    const TokenId right = right_of(pair);
    const TokenId merged = add_token(token_bytes_[left] + token_bytes_[right]);
    merges_.push_back({left, right});
    merged_.insert(pair);

    std::vector<uint32_t> words = std::move(words_of_pair_[pair]);
    words_of_pair_.erase(pair);
    std::sort(words.begin(), words.end());
    words.erase(std::unique(words.begin(), words.end()), words.end());
    new_pairs_.clear();
    for (const uint32_t w : words) merge_in_word(w, left, right, merged);
    pair_counts_.erase(pair);

    std::sort(new_pairs_.begin(), new_pairs_.end());
    new_pairs_.erase(std::unique(new_pairs_.begin(), new_pairs_.end()), new_pairs_.end());
    for (const uint64_t new_pair : new_pairs_) {
      const int64_t count = count_of(new_pair);
      if (count >= min_pair_count_) push(new_pair, count);
    }
  }

  // Replaces each occurrence of (left, right) in word `w`, left to right, by `merged`. Each
  // replacement turns the pairs (before, left) and (right, after) into (before, merged) and
  // (merged, after); `before` is read from the rewritten prefix, so back-to-back occurrences
  // (l r l r -> m m) are counted right.
  void merge_in_word(uint32_t w, TokenId left, TokenId right, TokenId merged) {
    std::vector<TokenId>& symbols = words_[w];
    const int64_t count = word_counts_[w];
    const auto add = [&](TokenId a, TokenId b, int64_t delta) {
      const uint64_t pair = pair_key(a, b);
      pair_counts_[pair] += delta;
      if (delta > 0) {
        note_occurrence(pair, w);
        new_pairs_.push_back(pair);
      }
    };
    size_t out = 0;
    for (size_t i = 0; i < symbols.size();) {
      if (i + 1 < symbols.size() && symbols[i] == left && symbols[i + 1] == right) {
        if (out > 0) {
          add(symbols[out - 1], left, -count);
          add(symbols[out - 1], merged, count);
        }
        if (i + 2 < symbols.size()) {
          add(right, symbols[i + 2], -count);
          add(merged, symbols[i + 2], count);
        }
        symbols[out++] = merged;
        i += 2;
      } else {
        symbols[out++] = symbols[i++];
      }
    }
    symbols.resize(out);
  }

  const int64_t min_pair_count_;
  std::vector<std::string> token_bytes_;
  std::unordered_map<std::string, TokenId> id_of_bytes_;
  std::vector<BpeMerge> merges_;
  std::unordered_set<uint64_t> merged_;
  // words_[w]: current tokens of distinct piece w; word_counts_[w]: its frequency.
  std::vector<std::vector<TokenId>> words_;
  std::vector<int64_t> word_counts_;
  std::unordered_map<uint64_t, int64_t> pair_counts_;
  // Words that contain (or once contained) each pair; stale entries are harmless.
  std::unordered_map<uint64_t, std::vector<uint32_t>> words_of_pair_;
  std::vector<HeapEntry> heap_;
  HeapOrder heap_order_;
  std::vector<uint64_t> new_pairs_;
};

}  // namespace

BpeTokenizer train_bpe(std::span<const std::string_view> texts, int64_t vocab_size,
                       int64_t min_pair_count) {
  ENGINE_CHECK(vocab_size >= 257, "train_bpe: vocab_size ", vocab_size,
               " is too small: a byte-level vocabulary needs 256 byte tokens and <|endoftext|>");
  ENGINE_CHECK(vocab_size < (int64_t{1} << 31), "train_bpe: vocab_size ", vocab_size,
               " is too large");
  ENGINE_CHECK(min_pair_count >= 1, "train_bpe: min_pair_count must be at least 1, got ",
               min_pair_count);
  return Trainer(texts, min_pair_count).run(vocab_size);
}

}  // namespace data
