// Binary token files: a tokenised corpus stored once and memory-mapped for training.
//
// Layout (little-endian), 32-byte header then the tokens:
//   offset  0  8 bytes  magic "SEQPETOK"
//   offset  8  u32      format version (1)
//   offset 12  u32      vocabulary size V (every token is in [0, V))
//   offset 16  u32      bytes per token: 2 (u16) when V <= 65536, else 4 (u32)
//   offset 20  u32      reserved, 0
//   offset 24  u64      token count N
//   offset 32  N tokens
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>

#include "data/bpe_tokenizer.h"

namespace data {

inline constexpr char kTokenFileMagic[8] = {'S', 'E', 'Q', 'P', 'E', 'T', 'O', 'K'};
inline constexpr uint32_t kTokenFileVersion = 1;
inline constexpr size_t kTokenFileHeaderBytes = 32;

// Bytes per stored token for a vocabulary of `vocab_size` tokens: 2 or 4.
int token_bytes_for_vocab(int64_t vocab_size);

// Writes tokens: (N) to `path` atomically (a temporary file in the same folder, fsync'd, then
// renamed over `path`), so a reader never sees a partial file. Every token must be in [0, V).
void write_token_file(const std::filesystem::path& path, std::span<const TokenId> tokens,
                      int64_t vocab_size);

// A token file mapped read-only into memory. Opening validates the header and the file size;
// errors name the file.
class TokenFile {
 public:
  explicit TokenFile(const std::filesystem::path& path);
  TokenFile(TokenFile&& other) noexcept;
  TokenFile& operator=(TokenFile&& other) noexcept;
  TokenFile(const TokenFile&) = delete;
  TokenFile& operator=(const TokenFile&) = delete;
  ~TokenFile();

  const std::filesystem::path& path() const { return path_; }
  int64_t size() const { return token_count_; }
  int64_t vocab_size() const { return vocab_size_; }
  int bytes_per_token() const { return bytes_per_token_; }

  // Token at position i (bounds-checked).
  TokenId at(int64_t i) const;
  // Copies tokens [begin, begin + out.size()) into `out` (bounds-checked).
  void read(int64_t begin, std::span<TokenId> out) const;
  void read(int64_t begin, std::span<int64_t> out) const;

 private:
  template <typename Index>
  void read_into(int64_t begin, std::span<Index> out) const;
  void unmap();

  std::filesystem::path path_;
  void* mapping_ = nullptr;
  size_t mapping_bytes_ = 0;
  const unsigned char* tokens_ = nullptr;
  int64_t token_count_ = 0;
  int64_t vocab_size_ = 0;
  int bytes_per_token_ = 0;
};

}  // namespace data
