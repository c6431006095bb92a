// Loading Fashion-MNIST's IDX files into an ImageDataset (data/fashion_mnist.h).
#include "data/fashion_mnist.h"

#include "data/idx_file.h"
#include "engine/error.h"

namespace data {

namespace {

struct SplitFiles {
  std::filesystem::path images;
  std::filesystem::path labels;
};

SplitFiles split_files(const std::filesystem::path& dir, FashionMnistSplit split) {
  const std::string prefix = split == FashionMnistSplit::train ? "train" : "t10k";
  return {dir / (prefix + "-images-idx3-ubyte.gz"), dir / (prefix + "-labels-idx1-ubyte.gz")};
}

}  // namespace

bool fashion_mnist_available(const std::filesystem::path& dir) {
  for (const FashionMnistSplit split : {FashionMnistSplit::train, FashionMnistSplit::test}) {
    const SplitFiles files = split_files(dir, split);
    if (!std::filesystem::is_regular_file(files.images) || !std::filesystem::is_regular_file(files.labels))
      return false;
  }
  return true;
}

ImageDataset load_fashion_mnist(FashionMnistSplit split, const FashionMnistOptions& options) {
  const SplitFiles files = split_files(options.dir, split);
  for (const auto& path : {files.images, files.labels})
    ENGINE_CHECK(std::filesystem::is_regular_file(path), "Fashion-MNIST: ", path,
                 " not found: apt-get install dataset-fashion-mnist (or run scripts/setup.sh), or set the "
                 "dataset folder");
  ENGINE_CHECK(options.std > 0, "Fashion-MNIST: the normalisation std must be positive, got ", options.std);
  const IdxImageSet set = read_idx_image_set(files.images, files.labels);
  const int64_t count = set.images.dims[0];
  const int64_t height = set.images.dims[1];
  const int64_t width = set.images.dims[2];
  ENGINE_CHECK(height == 28 && width == 28, "Fashion-MNIST: ", files.images, " holds ", height, "x", width,
               " images, expected 28x28");

  ImageDataset dataset;
  dataset.images = engine::Tensor::empty({count, 1, height, width}, engine::Dtype::f32);
  dataset.labels = engine::Tensor::empty({count}, engine::Dtype::i64);
  // (x / 255 - mean) / std as one multiply-add per pixel.
  const float scale = 1.0f / (255.0f * options.std);
  const float shift = -options.mean / options.std;
  float* pixels = dataset.images.data<float>();
  const uint8_t* raw = set.images.values.data();
  const int64_t pixel_count = count * height * width;
  for (int64_t i = 0; i < pixel_count; ++i) pixels[i] = float(raw[i]) * scale + shift;

  int64_t* labels = dataset.labels.data<int64_t>();
  for (int64_t i = 0; i < count; ++i) {
    const uint8_t label = set.labels.values[size_t(i)];
    ENGINE_CHECK(label < kFashionMnistClassNames.size(), "Fashion-MNIST: ", files.labels, " item ", i, " has label ",
                 int(label), ", outside [0, 10)");
    labels[i] = label;
  }
  for (const std::string_view name : kFashionMnistClassNames) dataset.class_names.emplace_back(name);
  if (options.mean != 0.0f || options.std != 1.0f) {
    dataset.mean = {options.mean};
    dataset.std = {options.std};
  }
  return dataset;
}

}  // namespace data
