// Byte-level BPE exactly as GPT-2: text is split by GPT-2's pre-tokenisation regex
// (data/pretokenizer.h), each piece becomes its bytes' tokens, and merges are applied by rank
// (repeatedly: the adjacent pair of lowest rank, all its occurrences left to right). Works on any
// bytes, valid UTF-8 or not: decode(encode(bytes)) == bytes. The special token <|endoftext|> is
// recognised in text by encode() and never produced by merges.
//
// Files: GPT-2's vocab.json (token text -> id, token text being the token's bytes written with
// GPT-2's byte-to-unicode mapping, data/byte_unicode.h) and merges.txt ("#version: 0.2", then one
// merge per line, "left right" in token text, highest priority first).
//
// V = vocabulary size.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace data {

using TokenId = int32_t;

inline constexpr std::string_view kEndOfText = "<|endoftext|>";

// A merge rule: the adjacent tokens `left`, `right` become the token of their concatenated bytes.
struct BpeMerge {
  TokenId left;
  TokenId right;
  bool operator==(const BpeMerge&) const = default;
};

class BpeTokenizer {
 public:
  // token_bytes: (V) the bytes of each token id; every single byte must be a token and no two
  // tokens may have the same bytes. merges: in rank order (rank 0 applies first); the concatenated
  // bytes of each must be a token. end_of_text: the id of <|endoftext|>, if the vocabulary has it.
  BpeTokenizer(std::vector<std::string> token_bytes, std::vector<BpeMerge> merges,
               std::optional<TokenId> end_of_text);
  BpeTokenizer(BpeTokenizer&&) noexcept;
  BpeTokenizer& operator=(BpeTokenizer&&) noexcept;
  ~BpeTokenizer();

  // Reads GPT-2-format files; errors name the file (and, for merges.txt, the line) at fault.
  static BpeTokenizer load(const std::filesystem::path& vocab_json,
                           const std::filesystem::path& merges_txt);
  // Writes GPT-2-format files (vocab.json one entry per line, in id order).
  void save(const std::filesystem::path& vocab_json, const std::filesystem::path& merges_txt) const;

  // Token ids of `text`; occurrences of <|endoftext|> become its id (when the vocabulary has it).
  std::vector<TokenId> encode(std::string_view text) const;
  // Token ids of `text` with <|endoftext|> treated as ordinary text.
  std::vector<TokenId> encode_ordinary(std::string_view text) const;
  // Appends the token ids of `text` (ordinary text) to `ids`.
  void encode_ordinary_append(std::string_view text, std::vector<TokenId>& ids) const;
  // The bytes of the tokens `ids`, concatenated. An id outside [0, V) throws.
  std::string decode(std::span<const TokenId> ids) const;

  int64_t vocab_size() const { return static_cast<int64_t>(token_bytes_.size()); }
  std::optional<TokenId> end_of_text() const { return end_of_text_; }
  const std::string& token_bytes(TokenId id) const { return token_bytes_.at(id); }
  const std::vector<BpeMerge>& merges() const { return merges_; }
  TokenId byte_token(uint8_t byte) const { return byte_tokens_[byte]; }

 private:
  struct MergeRule {
    int32_t rank;
    TokenId result;
  };
  struct WordCache;

  // Appends the tokens of one pre-tokenised piece, consulting and filling the cache.
  void encode_piece(std::string_view piece, std::vector<TokenId>& ids) const;
  // Applies the merges to the byte tokens of `piece`; appends the result to `ids`.
  void merge_piece(std::string_view piece, std::vector<TokenId>& ids) const;

  std::vector<std::string> token_bytes_;
  std::vector<BpeMerge> merges_;
  std::optional<TokenId> end_of_text_;
  TokenId byte_tokens_[256];
  // (left << 32 | right) -> rank and result of the merge of that pair.
  std::unordered_map<uint64_t, MergeRule> merge_rules_;
  std::unique_ptr<WordCache> cache_;
};

}  // namespace data
