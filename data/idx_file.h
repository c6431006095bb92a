// IDX files: the MNIST family's array format, read whole into memory, gzip-compressed or not.
//
// Layout (big-endian): two zero bytes, a type byte, the number of dimensions R, then R u32 sizes,
// then the values in row-major order. Only type 0x08 (unsigned bytes) is supported, which is what
// MNIST, Fashion-MNIST and KMNIST use: labels are 0x00000801 (N), images 0x00000803 (N, H, W).
// A file is decompressed when it starts with the gzip magic (1f 8b), whatever its name.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace data {

// The values of one IDX file. values.size() == product of dims.
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> values;
};

// Reads an IDX file of unsigned bytes. When `expected_rank` > 0 the file must have that many
// dimensions (1 for labels, 3 for images). Errors name the file and the fault: bad magic,
// unsupported type, wrong rank, truncated or oversized data, corrupt gzip stream.
IdxArray read_idx_file(const std::filesystem::path& path, int expected_rank = 0);

// An image set as IDX stores it: images (N, H, W) bytes and labels (N) bytes.
struct IdxImageSet {
  IdxArray images;
  IdxArray labels;
};

// Reads an images file (rank 3) and its labels file (rank 1) and checks that they hold the same
// number of items; the error names both files and both counts.
IdxImageSet read_idx_image_set(const std::filesystem::path& images_path, const std::filesystem::path& labels_path);

}  // namespace data
