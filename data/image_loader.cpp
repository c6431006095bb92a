// The image batch loader (data/image_loader.h): per-epoch shuffles, per-image transforms, a
// background thread preparing the next batch.
#include "data/image_loader.h"

#include <algorithm>
#include <numeric>

#include "engine/error.h"

namespace data {

namespace {

// The augmentation key, distinct from the shuffle key `seed` so the two streams never overlap.
constexpr uint64_t kAugmentationKeyOffset = 0x9E3779B97F4A7C15ull;

// The transform options with the padding filled with the dataset's black when not given.
ImageTransformOptions with_default_fill(const ImageTransformOptions& options, const ImageDataset& dataset) {
  ImageTransformOptions filled = options;
  if (filled.pad_fill.empty() && !dataset.mean.empty())
    for (size_t c = 0; c < dataset.mean.size(); ++c) filled.pad_fill.push_back(-dataset.mean[c] / dataset.std[c]);
  return filled;
}

const ImageDataset& checked(const ImageDataset& dataset) {
  ENGINE_CHECK(dataset.images.defined() && dataset.images.dim() == 4 && dataset.images.dtype() == engine::Dtype::f32 &&
                   dataset.images.device().is_cpu(),
               "ImageLoader: images must be (N, C, H, W) f32 on the host, got ",
               dataset.images.defined() ? dataset.images.describe() : "an undefined tensor");
  ENGINE_CHECK(dataset.labels.defined() && dataset.labels.dim() == 1 && dataset.labels.dtype() == engine::Dtype::i64 &&
                   dataset.labels.size(0) == dataset.images.size(0),
               "ImageLoader: labels must be (N) i64 with N = ", dataset.images.size(0), ", got ",
               dataset.labels.defined() ? dataset.labels.describe() : "an undefined tensor");
  ENGINE_CHECK(dataset.images.size(0) > 0, "ImageLoader: the dataset is empty");
  return dataset;
}

}  // namespace

ImageLoader::ImageLoader(const ImageDataset& dataset, const ImageLoaderOptions& options)
    : dataset_(checked(dataset)),
      options_(options),
      transform_(with_default_fill(options.transforms, dataset), dataset.images.size(1), dataset.images.size(2),
                 dataset.images.size(3)) {
  dataset_.images = dataset_.images.contiguous();
  dataset_.labels = dataset_.labels.contiguous();
  ENGINE_CHECK(options.batch_size > 0, "ImageLoader: batch_size must be positive, got ", options.batch_size);
  options.shard.rows(options.batch_size, "ImageLoader");
  ENGINE_CHECK(options.shard.count == 1 || options.drop_last, "ImageLoader: a shard of ", options.shard.count,
               " needs drop_last (a last, smaller batch would not split evenly)");
  const int64_t count = dataset_.size();
  batches_per_epoch_ =
      options.drop_last ? count / options.batch_size : (count + options.batch_size - 1) / options.batch_size;
  ENGINE_CHECK(batches_per_epoch_ > 0, "ImageLoader: drop_last with batch_size ", options.batch_size,
               " leaves no batch of a dataset of ", count, " images");
  start_prefetch();
}

ImageLoader::~ImageLoader() {
  if (prefetched_.valid()) prefetched_.wait();
}

const std::vector<int64_t>& ImageLoader::epoch_order(int64_t epoch) {
  if (cached_order_epoch_ == epoch) return cached_order_;
  const int64_t count = dataset_.size();
  cached_order_.resize(size_t(count));
  std::iota(cached_order_.begin(), cached_order_.end(), int64_t{0});
  if (options_.shuffle) {
    engine::Generator gen(options_.seed);
    gen.set_state(options_.seed, uint64_t(epoch) * uint64_t(count));
    for (int64_t i = count - 1; i > 0; --i)
      std::swap(cached_order_[size_t(i)], cached_order_[size_t(gen.randint(uint64_t(i + 1)))]);
  }
  cached_order_epoch_ = epoch;
  return cached_order_;
}

ImageBatch ImageLoader::prepare(LoaderPosition position) {
  const std::vector<int64_t>& order = epoch_order(position.epoch);
  const int64_t count = dataset_.size();
  const int64_t rows = options_.shard.rows(options_.batch_size, "ImageLoader");
  const int64_t first = position.batch * options_.batch_size + options_.shard.index * rows;
  const int64_t batch_size = std::min(rows, count - first);
  const int64_t channels = transform_.channels();
  const int64_t in_pixels = channels * dataset_.images.size(2) * dataset_.images.size(3);
  const int64_t out_pixels = channels * transform_.out_height() * transform_.out_width();

  ImageBatch batch;
  batch.position = position;
  batch.images = engine::Tensor::empty({batch_size, channels, transform_.out_height(), transform_.out_width()});
  batch.labels = engine::Tensor::empty({batch_size}, engine::Dtype::i64);
  const float* images = dataset_.images.data<float>();
  const int64_t* labels = dataset_.labels.data<int64_t>();
  float* out_images = batch.images.data<float>();
  int64_t* out_labels = batch.labels.data<int64_t>();
  const uint64_t augmentation_key = options_.seed + kAugmentationKeyOffset;
  engine::Generator gen(augmentation_key);
  std::vector<float> work;
  for (int64_t b = 0; b < batch_size; ++b) {
    const int64_t slot = first + b;
    const int64_t index = order[size_t(slot)];
    gen.set_state(augmentation_key,
                  (uint64_t(position.epoch) * uint64_t(count) + uint64_t(slot)) * kAugmentationBlocksPerImage);
    transform_.apply(images + index * in_pixels, out_images + b * out_pixels, gen, work);
    out_labels[b] = labels[index];
  }
  return batch;
}

LoaderPosition ImageLoader::following(LoaderPosition position) const {
  if (position.batch + 1 < batches_per_epoch_) return {position.epoch, position.batch + 1};
  return {position.epoch + 1, 0};
}

void ImageLoader::start_prefetch() {
  prefetched_ = std::async(std::launch::async, [this, position = position_] { return prepare(position); });
}

ImageBatch ImageLoader::next() {
  if (!prefetched_.valid()) start_prefetch();  // the previous preparation threw
  ImageBatch batch = prefetched_.get();
  position_ = following(position_);
  start_prefetch();
  return batch;
}

void ImageLoader::seek(LoaderPosition position) {
  ENGINE_CHECK(position.epoch >= 0 && position.batch >= 0 && position.batch < batches_per_epoch_,
               "ImageLoader: cannot seek to epoch ", position.epoch, " batch ", position.batch, ": an epoch has ",
               batches_per_epoch_, " batches (a checkpoint of a run with another batch size or dataset?)");
  if (prefetched_.valid()) prefetched_.wait();
  position_ = position;
  start_prefetch();
}

}  // namespace data
