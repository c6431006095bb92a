// Tests of IDX files and Fashion-MNIST loading (data/idx_file.h, data/fashion_mnist.h).
#include <doctest/doctest.h>
#include <zlib.h>

#include <cstdint>
#include <vector>

#include "data/fashion_mnist.h"
#include "data/idx_file.h"
#include "engine/error.h"
#include "temp_dir.h"

using doctest::Contains;

namespace {

// The bytes of an IDX file: magic (0, 0, type, rank), big-endian u32 dims, then `values`.
std::string idx_bytes(uint8_t type, const std::vector<uint32_t>& dims, const std::vector<uint8_t>& values) {
  std::string bytes = {'\0', '\0', char(type), char(dims.size())};
  for (const uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(char((d >> shift) & 0xFF));
  bytes.append(values.begin(), values.end());
  return bytes;
}

void write_gzip_file(const std::filesystem::path& path, const std::string& contents) {
  gzFile file = gzopen(path.c_str(), "wb");
  REQUIRE(file != nullptr);
  REQUIRE(gzwrite(file, contents.data(), unsigned(contents.size())) == int(contents.size()));
  REQUIRE(gzclose(file) == Z_OK);
}

std::vector<uint8_t> pattern(size_t count) {
  std::vector<uint8_t> values(count);
  for (size_t i = 0; i < count; ++i) values[i] = uint8_t((i * 37 + 11) % 256);
  return values;
}

}  // namespace

TEST_CASE("idx file: images and labels round trip, plain and gzipped") {
  TempDir dir;
  const std::vector<uint8_t> pixels = pattern(3 * 4 * 5);
  const std::vector<uint8_t> labels = {7, 0, 9};
  write_text_file(dir / "images.idx", idx_bytes(0x08, {3, 4, 5}, pixels));
  write_text_file(dir / "labels.idx", idx_bytes(0x08, {3}, labels));
  write_gzip_file(dir / "images.idx.gz", idx_bytes(0x08, {3, 4, 5}, pixels));
  write_gzip_file(dir / "labels.idx.gz", idx_bytes(0x08, {3}, labels));
  for (const std::string suffix : {"", ".gz"}) {
    CAPTURE(suffix);
    const data::IdxArray images = data::read_idx_file(dir / ("images.idx" + suffix), 3);
    CHECK(images.dims == std::vector<int64_t>{3, 4, 5});
    CHECK(images.values == pixels);
    const data::IdxImageSet set =
        data::read_idx_image_set(dir / ("images.idx" + suffix), dir / ("labels.idx" + suffix));
    CHECK(set.images.values == pixels);
    CHECK(set.labels.dims == std::vector<int64_t>{3});
    CHECK(set.labels.values == labels);
  }
  // Compression is recognised by content, not by name; any rank is accepted without expectation.
  write_gzip_file(dir / "plain-name.idx", idx_bytes(0x08, {2, 1, 3, 2}, pattern(12)));
  const data::IdxArray four_d = data::read_idx_file(dir / "plain-name.idx");
  CHECK(four_d.dims == std::vector<int64_t>{2, 1, 3, 2});
  CHECK(four_d.values == pattern(12));
  // A gzip stream larger than the reader's 1 MiB chunk.
  const std::vector<uint8_t> big = pattern(1100 * 1000);
  write_gzip_file(dir / "big.gz", idx_bytes(0x08, {1100, 1000}, big));
  CHECK(data::read_idx_file(dir / "big.gz", 2).values == big);
}

TEST_CASE("idx file: errors name the file and the fault") {
  TempDir dir;
  const auto path = dir / "bad.idx";
  const auto read = [&](int rank) { return data::read_idx_file(path, rank); };

  CHECK_THROWS_WITH_AS(data::read_idx_file(dir / "missing.idx"), Contains("missing.idx\": not found"), engine::Error);

  write_text_file(path, std::string(2, '\0'));
  CHECK_THROWS_WITH_AS(read(0), Contains("truncated: 2 bytes, shorter than the 4-byte magic"), engine::Error);

  write_text_file(path, idx_bytes(0x08, {3}, {1, 2, 3}).replace(0, 1, "\x12"));
  CHECK_THROWS_WITH_AS(read(1), Contains("bad.idx\": bad magic number 0x12000801"), engine::Error);

  write_text_file(path, idx_bytes(0x0D, {3}, pattern(12)));
  CHECK_THROWS_WITH_AS(read(1), Contains("value type 0xd is not supported (only 0x08"), engine::Error);

  write_text_file(path, idx_bytes(0x08, {}, {}));
  CHECK_THROWS_WITH_AS(read(0), Contains("bad magic number 0x800 (0 dimensions"), engine::Error);

  write_text_file(path, idx_bytes(0x08, {3}, {1, 2, 3}));
  CHECK_THROWS_WITH_AS(
      read(3), Contains("has 1 dimensions (magic 0x801) but 3 are expected (images, magic 0x00000803)"), engine::Error);

  write_text_file(path, idx_bytes(0x08, {3, 4, 5}, {}).substr(0, 10));
  CHECK_THROWS_WITH_AS(read(3), Contains("truncated header: 10 bytes, the 3 dimension sizes need 16"), engine::Error);

  write_text_file(path, idx_bytes(0x08, {3, 4, 5}, pattern(59)));
  CHECK_THROWS_WITH_AS(read(3), Contains("truncated: the header's dimensions need 60 data bytes but the file holds 59"),
                       engine::Error);

  write_text_file(path, idx_bytes(0x08, {3}, pattern(5)));
  CHECK_THROWS_WITH_AS(read(1), Contains("2 unexpected bytes after the data"), engine::Error);

  // 4 x 2^31 x 2^31 = 2^64 values wrapped to 0, which an empty data section matched.
  write_text_file(path, idx_bytes(0x08, {4, 1u << 31, 1u << 31}, {}));
  CHECK_THROWS_WITH_AS(read(3), Contains("dimensions [4, 2147483648, 2147483648]... hold more than 2^63 - 1 values"),
                       engine::Error);

  // A gzip stream cut in the middle.
  write_gzip_file(dir / "full.gz", idx_bytes(0x08, {300}, pattern(300)));
  const std::string compressed = read_text_file(dir / "full.gz");
  write_text_file(path, compressed.substr(0, compressed.size() / 2));
  CHECK_THROWS_WITH_AS(read(1), Contains("bad.idx\": corrupt or truncated gzip stream"), engine::Error);

  // Images and labels of different splits.
  write_text_file(dir / "images.idx", idx_bytes(0x08, {3, 2, 2}, pattern(12)));
  write_text_file(dir / "labels.idx", idx_bytes(0x08, {4}, pattern(4)));
  CHECK_THROWS_WITH_AS(data::read_idx_image_set(dir / "images.idx", dir / "labels.idx"),
                       Contains("images.idx\" holds 3 images but"), engine::Error);
  CHECK_THROWS_WITH_AS(data::read_idx_image_set(dir / "images.idx", dir / "labels.idx"),
                       Contains("labels.idx\" holds 4 labels"), engine::Error);
}

TEST_CASE("fashion-mnist: a folder of IDX files loads normalised with class names") {
  TempDir dir;
  const std::vector<uint8_t> pixels = pattern(2 * 28 * 28);
  for (const std::string split : {"train", "t10k"}) {
    write_gzip_file(dir / (split + "-images-idx3-ubyte.gz"), idx_bytes(0x08, {2, 28, 28}, pixels));
    write_gzip_file(dir / (split + "-labels-idx1-ubyte.gz"), idx_bytes(0x08, {2}, {9, 3}));
  }
  CHECK(data::fashion_mnist_available(dir.path()));
  const data::ImageDataset test = data::load_fashion_mnist(data::FashionMnistSplit::test, {dir.path(), 0.5f, 0.25f});
  CHECK(test.images.shape() == engine::Shape{2, 1, 28, 28});
  CHECK(test.labels.to_vector<int64_t>() == std::vector<int64_t>{9, 3});
  CHECK(test.class_names.size() == 10);
  CHECK(test.class_names[9] == "Ankle boot");
  CHECK(test.mean == std::vector<float>{0.5f});
  const std::vector<float> values = test.images.to_vector<float>();
  for (const size_t i : {size_t{0}, size_t{100}, size_t{1567}})
    CHECK(values[i] == doctest::Approx((pixels[i] / 255.0 - 0.5) / 0.25).epsilon(1e-6));

  write_gzip_file(dir / "t10k-labels-idx1-ubyte.gz", idx_bytes(0x08, {2}, {9, 10}));
  CHECK_THROWS_WITH_AS(data::load_fashion_mnist(data::FashionMnistSplit::test, {dir.path()}),
                       Contains("item 1 has label 10, outside [0, 10)"), engine::Error);
  std::filesystem::remove(dir / "train-labels-idx1-ubyte.gz");
  CHECK_FALSE(data::fashion_mnist_available(dir.path()));
  CHECK_THROWS_WITH_AS(data::load_fashion_mnist(data::FashionMnistSplit::train, {dir.path()}),
                       Contains("not found: apt-get install dataset-fashion-mnist"), engine::Error);
}

TEST_CASE("fashion-mnist: the installed dataset has 60,000 + 10,000 images in 10 classes") {
  if (!data::fashion_mnist_available()) {
    MESSAGE("skipped: ", data::kFashionMnistDefaultDir, " is absent (apt-get install dataset-fashion-mnist)");
    return;
  }
  // The test split is enough for the label and pixel checks; the training split only for its size.
  const data::ImageDataset train = data::load_fashion_mnist(data::FashionMnistSplit::train);
  CHECK(train.images.shape() == engine::Shape{60000, 1, 28, 28});
  const data::ImageDataset test = data::load_fashion_mnist(data::FashionMnistSplit::test);
  CHECK(test.images.shape() == engine::Shape{10000, 1, 28, 28});
  CHECK(test.labels.shape() == engine::Shape{10000});
  std::vector<int64_t> per_class(10, 0);
  for (const int64_t label : test.labels.to_vector<int64_t>()) {
    REQUIRE(label >= 0);
    REQUIRE(label < 10);
    ++per_class[size_t(label)];
  }
  for (const int64_t count : per_class) CHECK(count == 1000);  // the test split is balanced
  // Normalised pixels span black (0 - mean) / std to white (1 - mean) / std; the mean over the
  // training set is close to 0 since the constants are its statistics.
  const float* pixels = train.images.data<float>();
  const int64_t count = train.images.numel();
  double sum = 0;
  float lowest = pixels[0], highest = pixels[0];
  for (int64_t i = 0; i < count; ++i) {
    sum += pixels[i];
    lowest = std::min(lowest, pixels[i]);
    highest = std::max(highest, pixels[i]);
  }
  CHECK(lowest == doctest::Approx(-0.2860 / 0.3530).epsilon(1e-5));
  CHECK(highest == doctest::Approx((1 - 0.2860) / 0.3530).epsilon(1e-5));
  CHECK(std::abs(sum / double(count)) < 1e-3 / 0.3530);
}
