// An image classification dataset held in memory: what the Fashion-MNIST and image-folder loaders
// produce and what ImageLoader batches.
//   N = images, C = channels (1 grey, 3 RGB), H = height, W = width, K = classes
#pragma once

#include <string>
#include <vector>

#include "engine/tensor.h"

namespace data {

struct ImageDataset {
  engine::Tensor images;                 // (N, C, H, W) f32 on the host
  engine::Tensor labels;                 // (N) i64, each in [0, K)
  std::vector<std::string> class_names;  // (K), label id -> name
  // The per-channel normalisation already applied to `images` ((x - mean) / std, x in [0, 1]);
  // empty when the pixels are plain [0, 1] values. Padding for crops uses the normalised black.
  std::vector<float> mean;  // (C) or empty
  std::vector<float> std;   // (C) or empty

  int64_t size() const { return images.defined() ? images.size(0) : 0; }
};

}  // namespace data
