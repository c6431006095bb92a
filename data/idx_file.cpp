// Reading IDX arrays, gzip-compressed or not, and MNIST-style image/label pairs (data/idx_file.h).
#include "data/idx_file.h"

#include <zlib.h>

#include <cstdio>
#include <memory>
#include <string>

#include "engine/checked_size.h"
#include "engine/error.h"
#include "engine/shape.h"

namespace data {

namespace {

constexpr uint8_t kIdxTypeU8 = 0x08;
constexpr int kIdxMaxRank = 8;

// All bytes of `path`, inflated when the file is gzip-compressed (zlib reads plain files as is).
std::vector<uint8_t> read_maybe_gzipped(const std::filesystem::path& path) {
  ENGINE_CHECK(std::filesystem::is_regular_file(path), "IDX file ", path, ": not found (or not a regular file)");
  const std::unique_ptr<gzFile_s, int (*)(gzFile)> file(gzopen(path.c_str(), "rb"), gzclose);
  ENGINE_CHECK(file != nullptr, "IDX file ", path, ": cannot be opened");
  gzbuffer(file.get(), 1 << 17);
  std::vector<uint8_t> bytes;
  constexpr size_t kChunk = 1 << 20;
  for (;;) {
    const size_t old_size = bytes.size();
    bytes.resize(old_size + kChunk);
    const int got = gzread(file.get(), bytes.data() + old_size, kChunk);
    if (got < 0) {
      int code = 0;
      const char* message = gzerror(file.get(), &code);
      throw engine::Error(engine::detail::concat("IDX file ", path, ": corrupt gzip stream (", message, ")"));
    }
    bytes.resize(old_size + size_t(got));
    if (size_t(got) < kChunk) break;
  }
  // A gzip stream cut short reads as a short file plus an error flag.
  int code = 0;
  const char* message = gzerror(file.get(), &code);
  ENGINE_CHECK(code == Z_OK || code == Z_STREAM_END, "IDX file ", path, ": corrupt or truncated gzip stream (", message,
               ")");
  return bytes;
}

uint32_t read_big_endian_u32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

}  // namespace

IdxArray read_idx_file(const std::filesystem::path& path, int expected_rank) {
  std::vector<uint8_t> bytes = read_maybe_gzipped(path);
  ENGINE_CHECK(bytes.size() >= 4, "IDX file ", path, ": truncated: ", bytes.size(),
               " bytes, shorter than the 4-byte magic number");
  const uint32_t magic = read_big_endian_u32(bytes.data());
  ENGINE_CHECK(bytes[0] == 0 && bytes[1] == 0, "IDX file ", path, ": bad magic number 0x", std::hex, magic,
               " (an IDX file starts with two zero bytes, e.g. 0x00000803 for images)");
  ENGINE_CHECK(bytes[2] == kIdxTypeU8, "IDX file ", path, ": value type 0x", std::hex, int(bytes[2]),
               " is not supported (only 0x08, unsigned bytes)");
  const int rank = bytes[3];
  ENGINE_CHECK(rank >= 1 && rank <= kIdxMaxRank, "IDX file ", path, ": bad magic number 0x", std::hex, magic, std::dec,
               " (", rank, " dimensions; expected 1 to ", kIdxMaxRank, ")");
  ENGINE_CHECK(expected_rank <= 0 || rank == expected_rank, "IDX file ", path, ": has ", rank, " dimensions (magic 0x",
               std::hex, magic, std::dec, ") but ", expected_rank, " are expected (",
               expected_rank == 1 ? "labels, magic 0x00000801" : "images, magic 0x00000803", ")");

  const size_t header_bytes = 4 + 4 * size_t(rank);
  ENGINE_CHECK(bytes.size() >= header_bytes, "IDX file ", path, ": truncated header: ", bytes.size(), " bytes, the ",
               rank, " dimension sizes need ", header_bytes);
  IdxArray array;
  uint64_t count = 1;
  for (int d = 0; d < rank; ++d) {
    const uint32_t size = read_big_endian_u32(bytes.data() + 4 + 4 * d);
    array.dims.push_back(size);
    uint64_t product = 0;
    ENGINE_CHECK(!engine::size_product_overflows(count, size, &product), "IDX file ", path, ": dimensions ",
                 engine::shape_str(array.dims), "... hold more than 2^63 - 1 values: the header is corrupt");
    count = product;
  }
  const size_t data_bytes = bytes.size() - header_bytes;
  ENGINE_CHECK(data_bytes >= count, "IDX file ", path, ": truncated: the header's dimensions need ", count,
               " data bytes but the file holds ", data_bytes);
  ENGINE_CHECK(data_bytes == count, "IDX file ", path, ": ", data_bytes - count,
               " unexpected bytes after the data the header's dimensions describe (", count, " bytes)");
  bytes.erase(bytes.begin(), bytes.begin() + std::ptrdiff_t(header_bytes));
  array.values = std::move(bytes);
  return array;
}

IdxImageSet read_idx_image_set(const std::filesystem::path& images_path, const std::filesystem::path& labels_path) {
  IdxImageSet set{read_idx_file(images_path, 3), read_idx_file(labels_path, 1)};
  ENGINE_CHECK(set.images.dims[0] == set.labels.dims[0], "IDX image set: ", images_path, " holds ", set.images.dims[0],
               " images but ", labels_path, " holds ", set.labels.dims[0], " labels: pass files of the same split");
  return set;
}

}  // namespace data
