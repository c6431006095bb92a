// Token file writing (POSIX write + fsync + rename) and reading (mmap).
#include "data/token_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

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

void write_all(int fd, const void* data, size_t bytes, const std::filesystem::path& path) {
  const auto* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t written = ::write(fd, p, bytes);
    if (written < 0) {
      if (errno == EINTR) continue;
      throw_io_error(path, "write failed");
    }
    p += written;
    bytes -= static_cast<size_t>(written);
  }
}

template <typename Stored>
void write_tokens(int fd, std::span<const TokenId> tokens, const std::filesystem::path& path) {
  constexpr size_t kChunk = size_t{1} << 16;
  std::vector<Stored> chunk;
  chunk.reserve(std::min(kChunk, tokens.size()));
  for (size_t begin = 0; begin < tokens.size(); begin += kChunk) {
    const size_t end = std::min(tokens.size(), begin + kChunk);
    chunk.assign(tokens.begin() + begin, tokens.begin() + end);
    write_all(fd, chunk.data(), chunk.size() * sizeof(Stored), path);
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

  const std::filesystem::path temporary =
      path.string() + ".tmp." + std::to_string(static_cast<long>(::getpid()));
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw_io_error(temporary, "cannot create");
  try {
    write_all(fd, &header, sizeof header, temporary);
    if (header.bytes_per_token == 2) {
      write_tokens<uint16_t>(fd, tokens, temporary);
    } else {
      write_tokens<uint32_t>(fd, tokens, temporary);
    }
    if (::fsync(fd) != 0) throw_io_error(temporary, "fsync failed");
    if (::close(fd) != 0) {
      ::unlink(temporary.c_str());
      throw_io_error(temporary, "close failed");
    }
  } catch (...) {
    ::close(fd);
    ::unlink(temporary.c_str());
    throw;
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    ::unlink(temporary.c_str());
    errno = saved;
    throw_io_error(path, "cannot rename the temporary file " + temporary.string() + " to it");
  }
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
    ENGINE_CHECK(header.vocab_size > 0, path.string(), ": vocabulary size 0 in the header");
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
      out[i] = static_cast<Index>(token);
    }
  } else {
    for (int64_t i = 0; i < count; ++i) {
      uint32_t token;
      std::memcpy(&token, tokens_ + (begin + i) * 4, 4);
      out[i] = static_cast<Index>(token);
    }
  }
}

}  // namespace data
