// Fashion-MNIST (Zalando, 2017): 28x28 grey images of clothing in 10 classes, 60,000 for training
// and 10,000 for testing, as Debian's dataset-fashion-mnist package installs them:
//   /usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
#pragma once

#include <array>
#include <filesystem>
#include <string_view>

#include "data/image_dataset.h"

namespace data {

inline constexpr const char* kFashionMnistDefaultDir = "/usr/share/datasets/fashion-mnist";
// Mean and standard deviation of the training pixels in [0, 1].
inline constexpr float kFashionMnistMean = 0.2860f;
inline constexpr float kFashionMnistStd = 0.3530f;
inline constexpr std::array<std::string_view, 10> kFashionMnistClassNames = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

enum class FashionMnistSplit { train, test };

struct FashionMnistOptions {
  std::filesystem::path dir = kFashionMnistDefaultDir;
  // Pixels become (x / 255 - mean) / std; mean 0 and std 1 keep them in [0, 1].
  float mean = kFashionMnistMean;
  float std = kFashionMnistStd;
};

// True when the four files of the dataset are in `dir`.
bool fashion_mnist_available(const std::filesystem::path& dir = kFashionMnistDefaultDir);

// Loads one split: images (N, 1, 28, 28) f32 normalised, labels (N) i64 in [0, 10), the class
// names. Errors name the missing or malformed file and say which package installs it.
ImageDataset load_fashion_mnist(FashionMnistSplit split, const FashionMnistOptions& options = {});

}  // namespace data
