// Tests of image-folder datasets (data/image_folder.h): PNG and JPEG decoding, labels, errors.
#include <doctest/doctest.h>
// jpeglib.h uses size_t and FILE without including their headers.
#include <cstdio>
#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

#include <vector>

#include "data/image_folder.h"
#include "engine/error.h"
#include "temp_dir.h"

using doctest::Contains;

namespace {

// Interleaved (H, W, C) 8-bit samples with a pattern that varies along both axes and channels.
std::vector<unsigned char> pattern_samples(int channels, int height, int width) {
  std::vector<unsigned char> samples(size_t(channels * height * width));
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < channels; ++c)
        samples[size_t((y * width + x) * channels + c)] = (unsigned char)((y * 40 + x * 9 + c * 70) % 256);
  return samples;
}

void write_png(const std::filesystem::path& path, int channels, int height, int width) {
  const std::vector<unsigned char> samples = pattern_samples(channels, height, width);
  png_image png{};
  png.version = PNG_IMAGE_VERSION;
  png.width = png_uint_32(width);
  png.height = png_uint_32(height);
  png.format = channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  REQUIRE(png_image_write_to_file(&png, path.c_str(), 0, samples.data(), 0, nullptr) != 0);
}

// A smooth pattern (JPEG's worst case is sharp edges), written at quality 100 without chroma
// subsampling, so decoding is within a few levels of the original.
std::vector<unsigned char> smooth_samples(int channels, int height, int width) {
  std::vector<unsigned char> samples(size_t(channels * height * width));
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < channels; ++c)
        samples[size_t((y * width + x) * channels + c)] = (unsigned char)(60 + 8 * y + 5 * x + 30 * c);
  return samples;
}

void write_jpeg(const std::filesystem::path& path, int channels, int height, int width) {
  const std::vector<unsigned char> samples = smooth_samples(channels, height, width);
  jpeg_compress_struct info{};
  jpeg_error_mgr error{};
  info.err = jpeg_std_error(&error);
  jpeg_create_compress(&info);
  FILE* file = std::fopen(path.c_str(), "wb");
  REQUIRE(file != nullptr);
  jpeg_stdio_dest(&info, file);
  info.image_width = JDIMENSION(width);
  info.image_height = JDIMENSION(height);
  info.input_components = channels;
  info.in_color_space = channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(&info);
  jpeg_set_quality(&info, 100, TRUE);
  for (int c = 0; c < info.num_components; ++c) info.comp_info[c].h_samp_factor = info.comp_info[c].v_samp_factor = 1;
  jpeg_start_compress(&info, TRUE);
  while (info.next_scanline < info.image_height) {
    JSAMPROW row = const_cast<unsigned char*>(samples.data()) + size_t(info.next_scanline) * size_t(width * channels);
    jpeg_write_scanlines(&info, &row, 1);
  }
  jpeg_finish_compress(&info);
  jpeg_destroy_compress(&info);
  std::fclose(file);
}

// The planar value of channel c at (y, x) in an interleaved sample buffer, in [0, 1].
float sample_at(const std::vector<unsigned char>& samples, int channels, int width, int c, int y, int x) {
  return float(samples[size_t((y * width + x) * channels + c)]) / 255.0f;
}

}  // namespace

TEST_CASE("image folder: PNG grey and RGB decode exactly to planar [0, 1] values") {
  TempDir dir;
  for (const int channels : {1, 3}) {
    CAPTURE(channels);
    write_png(dir / "image.png", channels, 5, 7);
    const data::HostImage image = data::decode_image(dir / "image.png");
    CHECK(image.channels == channels);
    CHECK(image.height == 5);
    CHECK(image.width == 7);
    const std::vector<unsigned char> samples = pattern_samples(channels, 5, 7);
    for (int c = 0; c < channels; ++c)
      for (int y = 0; y < 5; ++y)
        for (int x = 0; x < 7; ++x)
          CHECK(image.pixels[size_t((c * 5 + y) * 7 + x)] == sample_at(samples, channels, 7, c, y, x));
  }
}

TEST_CASE("image folder: JPEG grey and RGB decode close to what was encoded") {
  TempDir dir;
  for (const int channels : {1, 3}) {
    CAPTURE(channels);
    write_jpeg(dir / "image.jpg", channels, 8, 9);
    const data::HostImage image = data::decode_image(dir / "image.jpg");
    CHECK(image.channels == channels);
    CHECK(image.height == 8);
    CHECK(image.width == 9);
    const std::vector<unsigned char> samples = smooth_samples(channels, 8, 9);
    // JPEG is lossy: at quality 100 without subsampling a smooth image comes back within a few
    // levels (quantisation and the YCbCr round trip), hence 4/255.
    for (int c = 0; c < channels; ++c)
      for (int y = 0; y < 8; ++y)
        for (int x = 0; x < 9; ++x)
          CHECK(std::abs(image.pixels[size_t((c * 8 + y) * 9 + x)] - sample_at(samples, channels, 9, c, y, x)) <=
                4.0f / 255);
  }
}

TEST_CASE("image folder: undecodable files are errors that name the file") {
  TempDir dir;
  write_png(dir / "good.png", 3, 6, 6);
  const std::string png = read_text_file(dir / "good.png");
  write_text_file(dir / "cut.png", png.substr(0, png.size() / 2));
  CHECK_THROWS_WITH_AS(data::decode_image(dir / "cut.png"), Contains("cut.png\": cannot decode PNG ("), engine::Error);

  write_jpeg(dir / "good.jpg", 3, 16, 16);
  const std::string jpeg = read_text_file(dir / "good.jpg");
  write_text_file(dir / "cut.jpg", jpeg.substr(0, jpeg.size() / 2));
  CHECK_THROWS_WITH_AS(data::decode_image(dir / "cut.jpg"), Contains("cut.jpg\": cannot decode JPEG (Premature end"),
                       engine::Error);
  std::string garbled = jpeg.substr(0, 3) + std::string(64, '\x42');
  write_text_file(dir / "garbled.jpg", garbled);
  CHECK_THROWS_WITH_AS(data::decode_image(dir / "garbled.jpg"), Contains("garbled.jpg\": cannot decode JPEG ("),
                       engine::Error);
  write_text_file(dir / "text.png", "not an image at all");
  CHECK_THROWS_WITH_AS(data::decode_image(dir / "text.png"), Contains("text.png\": neither PNG nor JPEG"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(data::decode_image(dir / "absent.png"), Contains("absent.png\": cannot be opened"),
                       engine::Error);
}

TEST_CASE("image folder: a header claiming more than 2^26 pixels is refused before decoding allocates for it") {
  TempDir dir;
  // JPEG: the start-of-frame marker's height and width (after FF C0, length and precision) set to 9000.
  write_jpeg(dir / "small.jpg", 3, 8, 8);
  std::string jpeg = read_text_file(dir / "small.jpg");
  const size_t frame = jpeg.find("\xFF\xC0");
  REQUIRE(frame != std::string::npos);
  for (size_t at : {frame + 5, frame + 7}) jpeg.replace(at, 2, "\x23\x28");  // 0x2328 = 9000
  write_text_file(dir / "huge.jpg", jpeg);
  CHECK_THROWS_WITH_AS(data::decode_image(dir / "huge.jpg"), Contains("9000x9000 pixels, more than the 67108864"),
                       engine::Error);
  // PNG: IHDR's width and height (bytes 16-23) set to 100000, its CRC recomputed.
  write_png(dir / "small.png", 1, 4, 4);
  std::string png = read_text_file(dir / "small.png");
  for (size_t at : {size_t(16), size_t(20)}) png.replace(at, 4, std::string("\x00\x01\x86\xA0", 4));
  const uLong crc = crc32(0, reinterpret_cast<const Bytef*>(png.data() + 12), 17);
  for (int i = 0; i < 4; ++i) png[size_t(29 + i)] = char((crc >> (24 - 8 * i)) & 0xff);
  write_text_file(dir / "huge.png", png);
  CHECK_THROWS_WITH_AS(data::decode_image(dir / "huge.png"), Contains("PNG of 100000x100000 pixels, more than"),
                       engine::Error);
}

TEST_CASE("image folder: sorted class folders become labels; grey joins RGB; sizes must agree or be resized") {
  TempDir dir;
  std::filesystem::create_directories(dir / "root" / "zebra");
  std::filesystem::create_directories(dir / "root" / "ant");
  std::filesystem::create_directories(dir / "root" / ".hidden");
  write_png(dir / "root" / "zebra" / "b.png", 3, 4, 6);
  write_png(dir / "root" / "zebra" / "a.PNG", 1, 4, 6);
  write_jpeg(dir / "root" / "ant" / "x.jpeg", 3, 4, 6);
  write_text_file(dir / "root" / "ant" / "notes.txt", "ignored");
  write_png(dir / "root" / ".hidden" / "c.png", 1, 4, 6);

  const data::ImageFolderListing listing = data::list_image_folder(dir / "root");
  CHECK(listing.class_names == std::vector<std::string>{"ant", "zebra"});
  REQUIRE(listing.files.size() == 3);
  CHECK(listing.files[0].filename() == "x.jpeg");
  CHECK(listing.files[1].filename() == "a.PNG");
  CHECK(listing.files[2].filename() == "b.png");
  CHECK(listing.labels == std::vector<int64_t>{0, 1, 1});

  const data::ImageDataset dataset = data::load_image_folder(dir / "root");
  CHECK(dataset.images.shape() == engine::Shape{3, 3, 4, 6});
  CHECK(dataset.labels.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 1});
  CHECK(dataset.class_names == listing.class_names);
  // The grey image (index 1) is replicated into the three channels.
  const std::vector<float> values = dataset.images.to_vector<float>();
  const std::vector<unsigned char> grey = pattern_samples(1, 4, 6);
  for (int c = 0; c < 3; ++c) CHECK(values[size_t(72 + c * 24 + 13)] == sample_at(grey, 1, 6, 0, 2, 1));

  // As grey, normalised: RGB becomes luma.
  const data::ImageDataset grey_set = data::load_image_folder(dir / "root", {1, 0, 0, {0.5f}, {0.25f}});
  CHECK(grey_set.images.shape() == engine::Shape{3, 1, 4, 6});
  const std::vector<unsigned char> rgb = pattern_samples(3, 4, 6);
  const float luma = 0.299f * sample_at(rgb, 3, 6, 0, 3, 5) + 0.587f * sample_at(rgb, 3, 6, 1, 3, 5) +
                     0.114f * sample_at(rgb, 3, 6, 2, 3, 5);
  CHECK(grey_set.images.to_vector<float>()[size_t(2 * 24 + 3 * 6 + 5)] ==
        doctest::Approx((luma - 0.5) / 0.25).epsilon(1e-6));

  write_png(dir / "root" / "zebra" / "c.png", 3, 5, 6);
  CHECK_THROWS_WITH_AS(data::load_image_folder(dir / "root"), Contains("c.png\" is 5x6 but"), engine::Error);
  const data::ImageDataset resized = data::load_image_folder(dir / "root", {3, 8, 8, {}, {}});
  CHECK(resized.images.shape() == engine::Shape{4, 3, 8, 8});

  std::filesystem::create_directories(dir / "root" / "empty");
  CHECK_THROWS_WITH_AS(data::list_image_folder(dir / "root"), Contains("class folder \"empty\" holds no .png"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(data::list_image_folder(dir / "nowhere"), Contains("nowhere\": not found"), engine::Error);
}
