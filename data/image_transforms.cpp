// Image transforms on host buffers (data/image_transforms.h): bilinear/bicubic resize as PyTorch's
// F.interpolate, placement on a larger canvas, padded crop, flip, normalisation.
#include "data/image_transforms.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <new>

#include "engine/error.h"

namespace data {

namespace {

// One output coordinate of a 1-D resize: the source indices it reads and their weights.
struct ResizeTaps {
  int64_t index[4];
  double weight[4];
};

// Keys' cubic convolution kernel with a = -0.75, as torch's upsample_bicubic2d.
double cubic_near(double x, double a) { return ((a + 2) * x - (a + 3)) * x * x + 1; }       // |x| <= 1
double cubic_far(double x, double a) { return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a; }  // 1 < |x| < 2

// Taps of every output coordinate along one axis of size `in` resized to `out`.
std::vector<ResizeTaps> resize_taps(int64_t in, int64_t out, ResizeMode mode) {
  std::vector<ResizeTaps> taps(size_t(out), ResizeTaps{{0, 0, 0, 0}, {0, 0, 0, 0}});
  const double scale = double(in) / double(out);
  for (int64_t o = 0; o < out; ++o) {
    ResizeTaps& tap = taps[size_t(o)];
    double source = (double(o) + 0.5) * scale - 0.5;
    if (mode == ResizeMode::bilinear) {
      source = std::max(source, 0.0);
      const int64_t i0 = std::min(int64_t(source), in - 1);
      const double lambda = source - double(i0);
      tap.index[0] = i0;
      tap.index[1] = std::min(i0 + 1, in - 1);
      tap.weight[0] = 1 - lambda;
      tap.weight[1] = lambda;
    } else {
      const double floor_source = std::floor(source);
      const double t = source - floor_source;
      constexpr double a = -0.75;
      const double weights[4] = {cubic_far(t + 1, a), cubic_near(t, a), cubic_near(1 - t, a), cubic_far(2 - t, a)};
      for (int k = 0; k < 4; ++k) {
        tap.index[k] = std::clamp(int64_t(floor_source) - 1 + k, int64_t{0}, in - 1);
        tap.weight[k] = weights[k];
      }
    }
  }
  return taps;
}

}  // namespace

void resize_image(const float* src, int64_t channels, int64_t height, int64_t width, float* dst, int64_t out_height,
                  int64_t out_width, ResizeMode mode) {
  ENGINE_CHECK(height > 0 && width > 0 && out_height > 0 && out_width > 0, "resize_image: sizes must be positive, got ",
               height, "x", width, " -> ", out_height, "x", out_width);
  const std::vector<ResizeTaps> rows = resize_taps(height, out_height, mode);
  const std::vector<ResizeTaps> cols = resize_taps(width, out_width, mode);
  const int taps = mode == ResizeMode::bilinear ? 2 : 4;
  // Separable: rows first into a (OH, W) double buffer per channel, then columns.
  std::vector<double> row_pass(size_t(out_height * width));
  for (int64_t c = 0; c < channels; ++c) {
    const float* plane = src + c * height * width;
    for (int64_t oy = 0; oy < out_height; ++oy) {
      double* out_row = row_pass.data() + oy * width;
      std::fill(out_row, out_row + width, 0.0);
      for (int k = 0; k < taps; ++k) {
        const float* in_row = plane + rows[size_t(oy)].index[k] * width;
        const double w = rows[size_t(oy)].weight[k];
        for (int64_t x = 0; x < width; ++x) out_row[x] += w * double(in_row[x]);
      }
    }
    float* out_plane = dst + c * out_height * out_width;
    for (int64_t oy = 0; oy < out_height; ++oy) {
      const double* in_row = row_pass.data() + oy * width;
      for (int64_t ox = 0; ox < out_width; ++ox) {
        const ResizeTaps& tap = cols[size_t(ox)];
        double sum = 0;
        for (int k = 0; k < taps; ++k) sum += tap.weight[k] * in_row[tap.index[k]];
        out_plane[oy * out_width + ox] = float(sum);
      }
    }
  }
}

engine::Tensor resize_images(const engine::Tensor& images, int64_t out_height, int64_t out_width, ResizeMode mode) {
  ENGINE_CHECK(images.dim() == 4 && images.dtype() == engine::Dtype::f32 && images.device().is_cpu(),
               "resize_images: images must be (N, C, H, W) f32 on the host, got ", images.describe());
  const engine::Tensor source = images.contiguous();
  const int64_t count = source.size(0), channels = source.size(1), height = source.size(2), width = source.size(3);
  engine::Tensor resized = engine::Tensor::empty({count, channels, out_height, out_width}, engine::Dtype::f32);
  const float* src = source.data<float>();
  float* dst = resized.data<float>();
  // An exception must not leave an OpenMP region (that terminates the program): the first one is
  // kept and rethrown after it, std::bad_alloc as an error that says what ran out of memory.
  std::exception_ptr failure;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < count; ++n) {
    try {
      resize_image(src + n * channels * height * width, channels, height, width,
                   dst + n * channels * out_height * out_width, out_height, out_width, mode);
    } catch (const std::bad_alloc&) {
#pragma omp critical(resize_images_failure)
      if (!failure)
        failure = std::make_exception_ptr(engine::Error(engine::detail::concat(
            "resize_images: out of host memory resizing ", count, " images of ", height, "x", width, " to ",
            out_height, "x", out_width)));
    } catch (...) {
#pragma omp critical(resize_images_failure)
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
  return resized;
}

engine::Tensor place_on_canvas(const engine::Tensor& images, int64_t out_height, int64_t out_width, int64_t top,
                               int64_t left, const std::vector<float>& fill) {
  ENGINE_CHECK(images.dim() == 4 && images.dtype() == engine::Dtype::f32 && images.device().is_cpu(),
               "place_on_canvas: images must be (N, C, H, W) f32 on the host, got ", images.describe());
  const engine::Tensor source = images.contiguous();
  const int64_t count = source.size(0), channels = source.size(1), height = source.size(2), width = source.size(3);
  ENGINE_CHECK(top >= 0 && left >= 0 && top + height <= out_height && left + width <= out_width,
               "place_on_canvas: a ", height, "x", width, " image at (", top, ", ", left, ") does not fit a ",
               out_height, "x", out_width, " canvas");
  ENGINE_CHECK(fill.empty() || int64_t(fill.size()) == channels, "place_on_canvas: fill has ", fill.size(),
               " values for ", channels, " channels");
  engine::Tensor canvas = engine::Tensor::empty({count, channels, out_height, out_width}, engine::Dtype::f32);
  const float* src = source.data<float>();
  float* dst = canvas.data<float>();
  for (int64_t n = 0; n < count; ++n)
    for (int64_t c = 0; c < channels; ++c) {
      const float* plane = src + (n * channels + c) * height * width;
      float* out = dst + (n * channels + c) * out_height * out_width;
      std::fill(out, out + out_height * out_width, fill.empty() ? 0.0f : fill[size_t(c)]);
      for (int64_t y = 0; y < height; ++y)
        std::copy(plane + y * width, plane + (y + 1) * width, out + (top + y) * out_width + left);
    }
  return canvas;
}

void crop_with_padding(const float* src, int64_t channels, int64_t height, int64_t width, int64_t padding, int64_t top,
                       int64_t left, const float* fill, float* dst) {
  ENGINE_CHECK(top >= 0 && top <= 2 * padding && left >= 0 && left <= 2 * padding, "crop_with_padding: window (", top,
               ", ", left, ") outside [0, ", 2 * padding, "] for padding ", padding);
  for (int64_t c = 0; c < channels; ++c) {
    const float* plane = src + c * height * width;
    float* out = dst + c * height * width;
    const float value = fill ? fill[c] : 0.0f;
    // Output pixel (y, x) reads source pixel (y + top - padding, x + left - padding).
    const int64_t dy = top - padding, dx = left - padding;
    const int64_t x_begin = std::clamp(-dx, int64_t{0}, width), x_end = std::clamp(width - dx, int64_t{0}, width);
    for (int64_t y = 0; y < height; ++y) {
      float* out_row = out + y * width;
      const int64_t sy = y + dy;
      if (sy < 0 || sy >= height) {
        std::fill(out_row, out_row + width, value);
        continue;
      }
      std::fill(out_row, out_row + x_begin, value);
      std::copy(plane + sy * width + x_begin + dx, plane + sy * width + x_end + dx, out_row + x_begin);
      std::fill(out_row + x_end, out_row + width, value);
    }
  }
}

void flip_horizontal_(float* image, int64_t channels, int64_t height, int64_t width) {
  for (int64_t row = 0; row < channels * height; ++row) std::reverse(image + row * width, image + (row + 1) * width);
}

void normalize_(float* image, int64_t channels, int64_t pixels_per_channel, const float* mean, const float* std) {
  for (int64_t c = 0; c < channels; ++c) {
    const float inverse_std = 1.0f / std[c];
    float* plane = image + c * pixels_per_channel;
    for (int64_t i = 0; i < pixels_per_channel; ++i) plane[i] = (plane[i] - mean[c]) * inverse_std;
  }
}

ImageTransform::ImageTransform(const ImageTransformOptions& options, int64_t channels, int64_t height, int64_t width)
    : options_(options), channels_(channels), height_(height), width_(width), out_height_(height), out_width_(width) {
  ENGINE_CHECK(channels > 0 && height > 0 && width > 0, "ImageTransform: image size must be positive, got (", channels,
               ", ", height, ", ", width, ")");
  ENGINE_CHECK(options.crop_padding >= 0, "ImageTransform: crop_padding must be >= 0, got ", options.crop_padding);
  ENGINE_CHECK(options.pad_fill.empty() || int64_t(options.pad_fill.size()) == channels,
               "ImageTransform: pad_fill has ", options.pad_fill.size(), " values for ", channels, " channels");
  ENGINE_CHECK((options.resize_height > 0) == (options.resize_width > 0) && options.resize_height >= 0,
               "ImageTransform: give both resize_height and resize_width (positive) or neither, got ",
               options.resize_height, "x", options.resize_width);
  ENGINE_CHECK(
      options.mean.size() == options.std.size() && (options.mean.empty() || int64_t(options.mean.size()) == channels),
      "ImageTransform: mean and std need one value per channel (", channels, "), got ", options.mean.size(), " and ",
      options.std.size());
  for (const float s : options.std) ENGINE_CHECK(s > 0, "ImageTransform: std values must be positive, got ", s);
  ENGINE_CHECK(options.max_zoom >= 1 && std::isfinite(options.max_zoom),
               "ImageTransform: max_zoom must be at least 1, got ", options.max_zoom);
  if (options.resize_height > 0) {
    out_height_ = options.resize_height;
    out_width_ = options.resize_width;
  }
}

void ImageTransform::apply(const float* src, float* dst, engine::Generator& gen, std::vector<float>& work) const {
  const int64_t pixels = channels_ * height_ * width_;
  const bool resize = out_height_ != height_ || out_width_ != width_;
  // Crop and flip write into `work` when a resize follows, else straight into dst.
  float* stage = dst;
  if (resize) {
    work.resize(size_t(pixels));
    stage = work.data();
  }
  if (options_.crop_padding > 0) {
    const auto window = uint64_t(2 * options_.crop_padding + 1);
    const auto top = int64_t(gen.randint(window));
    const auto left = int64_t(gen.randint(window));
    crop_with_padding(src, channels_, height_, width_, options_.crop_padding, top, left,
                      options_.pad_fill.empty() ? nullptr : options_.pad_fill.data(), stage);
  } else {
    std::copy(src, src + pixels, stage);
  }
  if (options_.horizontal_flip && gen.uniform() < 0.5) flip_horizontal_(stage, channels_, height_, width_);
  if (options_.max_zoom > 1) {
    const double zoom = 1 + (options_.max_zoom - 1) * gen.uniform();
    const int64_t window_height = std::max<int64_t>(1, std::llround(double(height_) / zoom));
    const int64_t window_width = std::max<int64_t>(1, std::llround(double(width_) / zoom));
    const auto top = int64_t(gen.randint(uint64_t(height_ - window_height + 1)));
    const auto left = int64_t(gen.randint(uint64_t(width_ - window_width + 1)));
    std::vector<float> window(size_t(channels_ * window_height * window_width));
    for (int64_t c = 0; c < channels_; ++c)
      for (int64_t y = 0; y < window_height; ++y) {
        const float* row = stage + (c * height_ + top + y) * width_ + left;
        std::copy(row, row + window_width, window.data() + (c * window_height + y) * window_width);
      }
    resize_image(window.data(), channels_, window_height, window_width, stage, height_, width_, ResizeMode::bilinear);
  }
  if (resize) resize_image(stage, channels_, height_, width_, dst, out_height_, out_width_, options_.resize_mode);
  if (!options_.mean.empty())
    normalize_(dst, channels_, out_height_ * out_width_, options_.mean.data(), options_.std.data());
}

}  // namespace data
