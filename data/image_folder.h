// Image-folder datasets, ImageNet style: one sub-folder per class under a root, class ids given by
// the sorted folder names, PNG (libpng) and JPEG (libjpeg-turbo) files inside.
//   C = channels (1 grey, 3 RGB), H = height, W = width
//
//   root/cat/001.png  -> label 0 ("cat")
//   root/dog/xyz.jpg  -> label 1 ("dog")
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/image_dataset.h"

namespace data {

// A decoded image with pixel values in [0, 1].
struct HostImage {
  int64_t channels = 0;  // 1 (grey) or 3 (RGB)
  int64_t height = 0;
  int64_t width = 0;
  std::vector<float> pixels;  // (C, H, W)
};

// Decodes a PNG or JPEG file, recognised by its first bytes rather than its name. Grey stays
// grey (C = 1), colour becomes RGB (C = 3); alpha is dropped, 16-bit samples become 8-bit, palettes
// are expanded. Errors name the file and the decoder's reason.
HostImage decode_image(const std::filesystem::path& path);

// Converts between grey and RGB: grey is replicated, RGB becomes luma 0.299 R + 0.587 G + 0.114 B
// (ITU-R 601, as PIL's "L" mode).
HostImage convert_channels(const HostImage& image, int64_t channels);

// The files of a folder dataset, before decoding.
struct ImageFolderListing {
  std::vector<std::string> class_names;      // (K), sorted
  std::vector<std::filesystem::path> files;  // (N), sorted by class then file name
  std::vector<int64_t> labels;               // (N)
};

// Lists root/<class>/<file> for files ending in .png, .jpg or .jpeg (any case); hidden entries
// are skipped. Errors when the root is missing or holds no class folder, or a class has no image.
ImageFolderListing list_image_folder(const std::filesystem::path& root);

struct ImageFolderOptions {
  int64_t channels = 0;     // 1 or 3 to convert; 0 keeps grey when every image is grey, else RGB
  int64_t height = 0;       // with width, resize every image (bilinear) to this size; 0 requires all
  int64_t width = 0;        // images to have the same size already
  std::vector<float> mean;  // (C) normalise to (x - mean) / std when given
  std::vector<float> std;   // (C)
};

// Decodes a whole folder dataset into memory: images (N, C, H, W) f32, labels (N) i64.
ImageDataset load_image_folder(const std::filesystem::path& root, const ImageFolderOptions& options = {});

}  // namespace data
