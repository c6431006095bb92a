// Image-folder datasets (data/image_folder.h): PNG decoding with libpng, JPEG with libjpeg-turbo,
// class folders to labels.
#include "data/image_folder.h"

// jpeglib.h uses size_t and FILE without including their headers.
#include <cstdio>
#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include <algorithm>
#include <csetjmp>
#include <fstream>
#include <iterator>

#include "data/image_transforms.h"
#include "engine/error.h"

namespace data {

namespace {

std::vector<unsigned char> read_file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  ENGINE_CHECK(in.good(), "image ", path, ": cannot be opened");
  return std::vector<unsigned char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Interleaved 8-bit samples (H, W, C) -> planar floats (C, H, W) in [0, 1].
HostImage planar_from_interleaved(const unsigned char* samples, int64_t channels, int64_t height, int64_t width) {
  HostImage image{channels, height, width, std::vector<float>(size_t(channels * height * width))};
  const int64_t plane = height * width;
  for (int64_t i = 0; i < plane; ++i)
    for (int64_t c = 0; c < channels; ++c)
      image.pixels[size_t(c * plane + i)] = float(samples[i * channels + c]) / 255.0f;
  return image;
}

// The most pixels an image may have (8192 x 8192): a header may claim up to 2^31 x 2^31 (PNG) or
// 65500 x 65500 (JPEG) in a few bytes, and decoding allocates for what it claims.
constexpr int64_t kMaxImagePixels = int64_t(1) << 26;

// libpng's simplified API reports errors through the image struct rather than longjmp.
HostImage decode_png(const std::filesystem::path& path, const std::vector<unsigned char>& bytes) {
  png_image png{};
  png.version = PNG_IMAGE_VERSION;
  ENGINE_CHECK(png_image_begin_read_from_memory(&png, bytes.data(), bytes.size()) != 0, "image ", path,
               ": cannot decode PNG (", png.message, ")");
  if (int64_t(png.width) * int64_t(png.height) > kMaxImagePixels) {
    png_image_free(&png);
    throw engine::Error(engine::detail::concat("image ", path, ": PNG of ", png.width, "x", png.height,
                                               " pixels, more than the ", kMaxImagePixels, " this loader accepts"));
  }
  const bool colour = (png.format & PNG_FORMAT_FLAG_COLOR) != 0;
  png.format = colour ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  const int64_t channels = colour ? 3 : 1;
  std::vector<unsigned char> samples(PNG_IMAGE_SIZE(png));
  const int ok = png_image_finish_read(&png, nullptr, samples.data(), 0, nullptr);
  const std::string message = png.message;
  png_image_free(&png);
  ENGINE_CHECK(ok != 0, "image ", path, ": cannot decode PNG (", message, ")");
  return planar_from_interleaved(samples.data(), channels, png.height, png.width);
}

// libjpeg reports fatal errors through error_exit, which must not return: jump back to the decoder
// (a C++ exception must not unwind through the C library).
struct JpegErrorManager {
  jpeg_error_mgr base;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_error_exit(j_common_ptr info) {
  auto* manager = reinterpret_cast<JpegErrorManager*>(info->err);
  (*info->err->format_message)(info, manager->message);
  std::longjmp(manager->jump, 1);
}

// libjpeg only warns about a file cut short and fills the rest with grey; treat that as an error
// (as PIL does) so a damaged file is not trained on silently. Other warnings are ignored.
void jpeg_emit_message(j_common_ptr info, int level) {
  if (level < 0 && info->err->msg_code == JWRN_JPEG_EOF) jpeg_error_exit(info);
}

// Decodes into `samples` (H, W, C); returns false with `error` filled on failure. Only trivially
// destructible locals live between setjmp and longjmp.
bool decode_jpeg_samples(const std::vector<unsigned char>& bytes, std::vector<unsigned char>& samples,
                         int64_t& channels, int64_t& height, int64_t& width, char* error) {
  jpeg_decompress_struct info{};
  JpegErrorManager manager{};
  info.err = jpeg_std_error(&manager.base);
  manager.base.error_exit = jpeg_error_exit;
  manager.base.emit_message = jpeg_emit_message;
  if (setjmp(manager.jump)) {
    std::copy(manager.message, manager.message + JMSG_LENGTH_MAX, error);
    jpeg_destroy_decompress(&info);
    return false;
  }
  jpeg_create_decompress(&info);
  jpeg_mem_src(&info, bytes.data(), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&info, TRUE);
  if (int64_t(info.image_width) * int64_t(info.image_height) > kMaxImagePixels) {
    std::snprintf(error, JMSG_LENGTH_MAX, "%ux%u pixels, more than the %lld this loader accepts", info.image_width,
                  info.image_height, static_cast<long long>(kMaxImagePixels));
    jpeg_destroy_decompress(&info);
    return false;
  }
  info.out_color_space = info.jpeg_color_space == JCS_GRAYSCALE ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&info);
  channels = info.output_components;
  height = info.output_height;
  width = info.output_width;
  samples.resize(size_t(channels * height * width));
  while (info.output_scanline < info.output_height) {
    JSAMPROW row = samples.data() + size_t(info.output_scanline) * size_t(channels * width);
    jpeg_read_scanlines(&info, &row, 1);
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  return true;
}

HostImage decode_jpeg(const std::filesystem::path& path, const std::vector<unsigned char>& bytes) {
  std::vector<unsigned char> samples;
  int64_t channels = 0, height = 0, width = 0;
  char error[JMSG_LENGTH_MAX] = {};
  ENGINE_CHECK(decode_jpeg_samples(bytes, samples, channels, height, width, error), "image ", path,
               ": cannot decode JPEG (", error, ")");
  return planar_from_interleaved(samples.data(), channels, height, width);
}

bool has_image_extension(const std::filesystem::path& path) {
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return extension == ".png" || extension == ".jpg" || extension == ".jpeg";
}

bool is_hidden(const std::filesystem::path& path) { return path.filename().string().starts_with("."); }

}  // namespace

HostImage decode_image(const std::filesystem::path& path) {
  const std::vector<unsigned char> bytes = read_file_bytes(path);
  static constexpr unsigned char kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() >= 8 && std::equal(kPngSignature, kPngSignature + 8, bytes.begin())) return decode_png(path, bytes);
  if (bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF) return decode_jpeg(path, bytes);
  throw engine::Error(engine::detail::concat("image ", path, ": neither PNG nor JPEG (unrecognised first bytes, ",
                                             bytes.size(), " bytes in the file)"));
}

HostImage convert_channels(const HostImage& image, int64_t channels) {
  ENGINE_CHECK(channels == 1 || channels == 3, "convert_channels: channels must be 1 or 3, got ", channels);
  if (image.channels == channels) return image;
  const int64_t plane = image.height * image.width;
  HostImage converted{channels, image.height, image.width, std::vector<float>(size_t(channels * plane))};
  if (channels == 3) {
    for (int64_t c = 0; c < 3; ++c)
      std::copy(image.pixels.begin(), image.pixels.end(), converted.pixels.begin() + c * plane);
  } else {
    const float* r = image.pixels.data();
    for (int64_t i = 0; i < plane; ++i)
      converted.pixels[size_t(i)] = 0.299f * r[i] + 0.587f * r[plane + i] + 0.114f * r[2 * plane + i];
  }
  return converted;
}

ImageFolderListing list_image_folder(const std::filesystem::path& root) {
  ENGINE_CHECK(std::filesystem::is_directory(root), "image folder ", root, ": not found (or not a directory)");
  ImageFolderListing listing;
  for (const auto& entry : std::filesystem::directory_iterator(root))
    if (entry.is_directory() && !is_hidden(entry.path()))
      listing.class_names.push_back(entry.path().filename().string());
  std::sort(listing.class_names.begin(), listing.class_names.end());
  ENGINE_CHECK(!listing.class_names.empty(), "image folder ", root,
               ": holds no class folder (expected root/<class>/<image>.png or .jpg)");
  for (size_t label = 0; label < listing.class_names.size(); ++label) {
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(root / listing.class_names[label]))
      if (entry.is_regular_file() && !is_hidden(entry.path()) && has_image_extension(entry.path()))
        files.push_back(entry.path());
    ENGINE_CHECK(!files.empty(), "image folder ", root, ": class folder \"", listing.class_names[label],
                 "\" holds no .png, .jpg or .jpeg file");
    std::sort(files.begin(), files.end());
    for (auto& file : files) {
      listing.files.push_back(std::move(file));
      listing.labels.push_back(int64_t(label));
    }
  }
  return listing;
}

ImageDataset load_image_folder(const std::filesystem::path& root, const ImageFolderOptions& options) {
  ENGINE_CHECK(options.channels == 0 || options.channels == 1 || options.channels == 3, "image folder ", root,
               ": channels must be 0 (as stored), 1 or 3, got ", options.channels);
  ENGINE_CHECK((options.height > 0) == (options.width > 0), "image folder ", root,
               ": give both height and width to resize, or neither; got ", options.height, "x", options.width);
  const ImageFolderListing listing = list_image_folder(root);
  std::vector<HostImage> images;
  images.reserve(listing.files.size());
  for (const auto& file : listing.files) images.push_back(decode_image(file));

  int64_t channels = options.channels;
  if (channels == 0) {
    channels = 1;
    for (const HostImage& image : images) channels = std::max(channels, image.channels);
  }
  const int64_t height = options.height > 0 ? options.height : images.front().height;
  const int64_t width = options.width > 0 ? options.width : images.front().width;
  ENGINE_CHECK(
      options.mean.size() == options.std.size() && (options.mean.empty() || int64_t(options.mean.size()) == channels),
      "image folder ", root, ": mean and std need one value per channel (", channels, ")");

  ImageDataset dataset;
  const auto count = int64_t(images.size());
  dataset.images = engine::Tensor::empty({count, channels, height, width}, engine::Dtype::f32);
  dataset.labels = engine::Tensor::from_indices(listing.labels, {count});
  dataset.class_names = listing.class_names;
  float* out = dataset.images.data<float>();
  for (int64_t n = 0; n < count; ++n) {
    const HostImage image = convert_channels(images[size_t(n)], channels);
    float* dst = out + n * channels * height * width;
    if (image.height == height && image.width == width) {
      std::copy(image.pixels.begin(), image.pixels.end(), dst);
    } else {
      ENGINE_CHECK(options.height > 0, "image folder ", root, ": ", listing.files[size_t(n)], " is ", image.height, "x",
                   image.width, " but ", listing.files.front(), " is ", height, "x", width,
                   ": set a height and width to resize every image to");
      resize_image(image.pixels.data(), channels, image.height, image.width, dst, height, width, ResizeMode::bilinear);
    }
    if (!options.mean.empty()) normalize_(dst, channels, height * width, options.mean.data(), options.std.data());
  }
  dataset.mean = options.mean;
  dataset.std = options.std;
  return dataset;
}

}  // namespace data
