// Image transforms on host buffers: crop with padding, horizontal flip, resize, placement on a canvas,
// normalisation, and the per-image augmentation pipeline the loader applies. Random choices come from an
// engine::Generator, so a (seed, offset) state fixes them.
//   N = images, C = channels, H = height, W = width, OH/OW = output height/width
#pragma once

#include <cstdint>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace data {

enum class ResizeMode { bilinear, bicubic };

// Resizes src: (C, H, W) into dst: (C, OH, OW) with the conventions of torch's F.interpolate
// (align_corners=False, antialias=False): output pixel centres map to src (o + 0.5) * in / out - 0.5;
// bilinear clamps that below at 0, bicubic uses Keys' kernel with a = -0.75 and repeats the
// border pixels. Computes in double.
void resize_image(const float* src, int64_t channels, int64_t height, int64_t width, float* dst, int64_t out_height,
                  int64_t out_width, ResizeMode mode);

// images: (N, C, H, W) f32 host tensor -> (N, C, OH, OW): an evaluation set at another resolution.
engine::Tensor resize_images(const engine::Tensor& images, int64_t out_height, int64_t out_width, ResizeMode mode);

// images: (N, C, H, W) f32 host tensor -> (N, C, OH, OW): each image copied pixel for pixel with its
// top-left corner at (top, left) of a blank canvas of fill[c] (fill: (C), or empty for 0). The
// object keeps its size in pixels while the canvas grows, unlike resize_images, which magnifies it.
engine::Tensor place_on_canvas(const engine::Tensor& images, int64_t out_height, int64_t out_width, int64_t top,
                               int64_t left, const std::vector<float>& fill);

// dst: (C, H, W) = the (H, W) window at (top, left) of src: (C, H, W) padded by `padding` pixels on
// every side with fill[c] (fill: (C), or nullptr for 0). top and left are in [0, 2 * padding].
void crop_with_padding(const float* src, int64_t channels, int64_t height, int64_t width, int64_t padding, int64_t top,
                       int64_t left, const float* fill, float* dst);

// Mirrors image: (C, H, W) left to right, in place.
void flip_horizontal_(float* image, int64_t channels, int64_t height, int64_t width);

// image: (C, H * W) becomes (image - mean[c]) / std[c], in place. mean, std: (C).
void normalize_(float* image, int64_t channels, int64_t pixels_per_channel, const float* mean, const float* std);

// What the loader does to each image, in this order: random crop of the input size from the image
// padded on every side (torchvision's RandomCrop(size, padding)), random horizontal flip with
// probability 1/2, random zoom in (a square-ish window of side H/z by W/z at a random place, z drawn
// uniformly in [1, max_zoom], resized back to H x W bilinearly: RandomResizedCrop at aspect 1),
// resize, normalisation.
struct ImageTransformOptions {
  int64_t crop_padding = 0;     // 0: no crop
  std::vector<float> pad_fill;  // (C) value of padded pixels; empty: 0 (ImageLoader puts the
                                // dataset's black there, (0 - mean) / std when it is normalised)
  bool horizontal_flip = false;
  double max_zoom = 1;        // > 1: random zoom in by up to this factor; 1: none
  int64_t resize_height = 0;  // with resize_width: resize to this size; 0 keeps the size
  int64_t resize_width = 0;
  ResizeMode resize_mode = ResizeMode::bilinear;
  std::vector<float> mean;  // (C) normalise when given
  std::vector<float> std;   // (C)
};

// Generator blocks one image's random choices use; the loader gives each image its own range.
// (crop: 2, flip: 1, zoom: 3; the zoom's come last, so runs without it draw what they drew before it.)
inline constexpr uint64_t kAugmentationBlocksPerImage = 6;

// The transform pipeline for images of one size, validated once and applied per image.
class ImageTransform {
 public:
  ImageTransform(const ImageTransformOptions& options, int64_t channels, int64_t height, int64_t width);

  int64_t channels() const { return channels_; }
  int64_t out_height() const { return out_height_; }
  int64_t out_width() const { return out_width_; }
  bool is_random() const { return options_.crop_padding > 0 || options_.horizontal_flip || options_.max_zoom > 1; }

  // src: (C, H, W) -> dst: (C, OH, OW). Draws at most kAugmentationBlocksPerImage blocks from
  // `gen`. `work` is a scratch buffer reused across calls.
  void apply(const float* src, float* dst, engine::Generator& gen, std::vector<float>& work) const;

 private:
  ImageTransformOptions options_;
  int64_t channels_, height_, width_, out_height_, out_width_;
};

}  // namespace data
