// Token file writing (data::write_file_atomic) and reading (mmap).
#include "data/token_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "data/atomic_file.h"
#include "engine/error.h"

namespace data {

// The header is written and read with memcpy in host byte order; the format is little-endian.
static_assert(std::endian::native == std::endian::little,
              "token files are little-endian; add byte swapping for this host");

namespace {

// File I/O errors: the file, what failed and the system's reason.
[[noreturn]] void throw_io_error(const std::filesystem::path& path, std::string_view what) {
  throw engine::Error(engine::detail::concat(path.string(), ": ", what, ": ", std::strerror(errno)));
}

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t vocab_size;
  uint32_t bytes_per_token;
  uint32_t reserved;
  uint64_t token_count;
};
static_assert(sizeof(Header) == kTokenFileHeaderBytes);

// Appends `tokens` to `bytes` as Stored values in host (little-endian) byte order.
template <typename Stored>
void append_tokens(std::string& bytes, std::span<const TokenId> tokens) {
  const size_t offset = bytes.size();
  bytes.resize(offset + tokens.size() * sizeof(Stored));
  for (size_t i = 0; i < tokens.size(); ++i) {
    const auto value = static_cast<Stored>(tokens[i]);
    std::memcpy(bytes.data() + offset + i * sizeof(Stored), &value, sizeof value);
  }
}

}  // namespace

int token_bytes_for_vocab(int64_t vocab_size) { return vocab_size <= 65536 ? 2 : 4; }

void write_token_file(const std::filesystem::path& path, std::span<const TokenId> tokens,
                      int64_t vocab_size) {
  ENGINE_CHECK(vocab_size > 0 && vocab_size <= (int64_t{1} << 31), path.string(),
               ": cannot write a token file for vocabulary size ", vocab_size);
  for (size_t i = 0; i < tokens.size(); ++i) {
    ENGINE_CHECK(tokens[i] >= 0 && tokens[i] < vocab_size, path.string(), ": token ", tokens[i],
                 " at position ", i, " is outside the vocabulary [0, ", vocab_size, ")");
  }
  Header header{};
  std::memcpy(header.magic, kTokenFileMagic, sizeof header.magic);
  header.version = kTokenFileVersion;
  header.vocab_size = static_cast<uint32_t>(vocab_size);
  header.bytes_per_token = static_cast<uint32_t>(token_bytes_for_vocab(vocab_size));
  header.token_count = tokens.size();

  std::string bytes(reinterpret_cast<const char*>(&header), sizeof header);
  if (header.bytes_per_token == 2) {
    append_tokens<uint16_t>(bytes, tokens);
  } else {
    append_tokens<uint32_t>(bytes, tokens);
  }
  write_file_atomic(path, bytes);
}

TokenFile::TokenFile(const std::filesystem::path& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_io_error(path, "cannot open token file");
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    ::close(fd);
    throw_io_error(path, "cannot stat token file");
  }
  const auto file_bytes = static_cast<size_t>(info.st_size);
  if (file_bytes < kTokenFileHeaderBytes) {
    ::close(fd);
    ENGINE_CHECK(false, path.string(), ": truncated token file: ", file_bytes,
                 " bytes, shorter than the ", kTokenFileHeaderBytes, "-byte header");
  }
  mapping_ = ::mmap(nullptr, file_bytes, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (mapping_ == MAP_FAILED) {
    mapping_ = nullptr;
    throw_io_error(path, "cannot memory-map token file");
  }
  mapping_bytes_ = file_bytes;
  try {
    Header header;
    std::memcpy(&header, mapping_, sizeof header);
    ENGINE_CHECK(std::memcmp(header.magic, kTokenFileMagic, sizeof header.magic) == 0,
                 path.string(), ": not a token file (bad magic; expected \"SEQPETOK\")");
    ENGINE_CHECK(header.version == kTokenFileVersion, path.string(), ": token file version ",
                 header.version, ", but this build reads version ", kTokenFileVersion,
                 ": re-tokenise the corpus");
    ENGINE_CHECK(header.bytes_per_token == 2 || header.bytes_per_token == 4, path.string(),
                 ": bad token width ", header.bytes_per_token, " bytes (expected 2 or 4)");
    // At most 2^31, as written: a token must fit TokenId (int32) whichever accessor reads it (found
    // by fuzzing: vocabulary 2^32 - 1 let 0xfffd116f through, read as two different values).
    ENGINE_CHECK(header.vocab_size > 0 && header.vocab_size <= (uint64_t{1} << 31), path.string(),
                 ": vocabulary size ", header.vocab_size, " in the header (expected 1 to 2^31)");
    const size_t payload = file_bytes - kTokenFileHeaderBytes;
    ENGINE_CHECK(header.token_count <= payload / header.bytes_per_token &&
                     payload == header.token_count * header.bytes_per_token,
                 path.string(), ": truncated or corrupt token file: the header says ",
                 header.token_count, " tokens of ", header.bytes_per_token, " bytes, but ",
                 payload, " bytes follow the header");
    vocab_size_ = header.vocab_size;
    bytes_per_token_ = static_cast<int>(header.bytes_per_token);
    token_count_ = static_cast<int64_t>(header.token_count);
    tokens_ = static_cast<const unsigned char*>(mapping_) + kTokenFileHeaderBytes;
  } catch (...) {
    unmap();
    throw;
  }
}

TokenFile::TokenFile(TokenFile&& other) noexcept
    : path_(std::move(other.path_)),
      mapping_(std::exchange(other.mapping_, nullptr)),
      mapping_bytes_(std::exchange(other.mapping_bytes_, 0)),
      tokens_(std::exchange(other.tokens_, nullptr)),
      token_count_(std::exchange(other.token_count_, 0)),
      vocab_size_(other.vocab_size_),
      bytes_per_token_(other.bytes_per_token_) {}

TokenFile& TokenFile::operator=(TokenFile&& other) noexcept {
  if (this != &other) {
    unmap();
    path_ = std::move(other.path_);
    mapping_ = std::exchange(other.mapping_, nullptr);
    mapping_bytes_ = std::exchange(other.mapping_bytes_, 0);
    tokens_ = std::exchange(other.tokens_, nullptr);
    token_count_ = std::exchange(other.token_count_, 0);
    vocab_size_ = other.vocab_size_;
    bytes_per_token_ = other.bytes_per_token_;
  }
  return *this;
}

TokenFile::~TokenFile() { unmap(); }

void TokenFile::unmap() {
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_bytes_);
  mapping_ = nullptr;
  tokens_ = nullptr;
}

TokenId TokenFile::at(int64_t i) const {
  TokenId token;
  read(i, std::span<TokenId>(&token, 1));
  return token;
}

void TokenFile::read(int64_t begin, std::span<TokenId> out) const { read_into(begin, out); }
void TokenFile::read(int64_t begin, std::span<int64_t> out) const { read_into(begin, out); }

// A stored token outside the vocabulary: the file is damaged (found by fuzzing: 0xfffd116f read as
// token 4294775151 through one accessor and -192145 through the other).
[[noreturn]] static void token_outside_vocabulary(const std::filesystem::path& path, int64_t position, uint64_t token,
                                                  int64_t vocab_size) {
  throw engine::Error(engine::detail::concat(path.string(), ": token ", token, " at position ", position,
                                             " is outside the vocabulary [0, ", vocab_size, "): the file is damaged"));
}

template <typename Index>
void TokenFile::read_into(int64_t begin, std::span<Index> out) const {
  const auto count = static_cast<int64_t>(out.size());
  ENGINE_CHECK(begin >= 0 && begin <= token_count_ && count <= token_count_ - begin,
               path_.string(), ": cannot read tokens [", begin, ", ", begin + count,
               ") of a file of ", token_count_, " tokens");
  // memcpy compiles to plain loads and keeps the reads free of aliasing and alignment concerns.
  if (bytes_per_token_ == 2) {
    for (int64_t i = 0; i < count; ++i) {
      uint16_t token;
      std::memcpy(&token, tokens_ + (begin + i) * 2, 2);
      if (token >= vocab_size_) token_outside_vocabulary(path_, begin + i, token, vocab_size_);
      out[i] = static_cast<Index>(token);
    }
  } else {
    for (int64_t i = 0; i < count; ++i) {
      uint32_t token;
      std::memcpy(&token, tokens_ + (begin + i) * 4, 4);
      if (token >= vocab_size_) token_outside_vocabulary(path_, begin + i, token, vocab_size_);
      out[i] = static_cast<Index>(token);
    }
  }
}

}  // namespace data
