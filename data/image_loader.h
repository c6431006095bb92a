// Batches of an in-memory image dataset for training and evaluation: a shuffled order per epoch,
// per-image transforms, and the next batch prepared on a background thread while the caller trains
// on the current one.
//   B = batch size, C = channels, OH/OW = image size after the transforms
//
// Determinism: the order of epoch e is a Fisher-Yates shuffle drawn from Generator(seed) at offset
// e * N; the random choices for the image in slot i of epoch e come from a second Philox key at
// offset (e * N + i) * kAugmentationBlocksPerImage. Every batch is therefore a pure function of
// (seed, epoch, batch index): the same whatever the thread timing, and a loader moved to a saved
// position (seek) continues exactly as the uninterrupted one.
#pragma once

#include <cstdint>
#include <future>
#include <vector>

#include "data/batch_shard.h"
#include "data/image_dataset.h"
#include "data/image_transforms.h"

namespace data {

// Where a loader is: the next batch it returns is batch `batch` of epoch `epoch`. Saved in
// checkpoints to resume.
struct LoaderPosition {
  int64_t epoch = 0;
  int64_t batch = 0;
  bool operator==(const LoaderPosition&) const = default;
};

struct ImageLoaderOptions {
  int64_t batch_size = 64;
  bool shuffle = true;     // false: dataset order (evaluation)
  bool drop_last = false;  // true: skip the last, smaller batch of each epoch
  uint64_t seed = 0;
  ImageTransformOptions transforms;
  // Data-parallel ranks: each batch holds only the shard's rows of the batch of batch_size images
  // (same order and augmentations as one process); needs drop_last with more than one shard.
  BatchShard shard;
};

struct ImageBatch {
  engine::Tensor images;    // (B, C, OH, OW) f32 on the host
  engine::Tensor labels;    // (B) i64
  LoaderPosition position;  // the epoch and batch index it is
};

class ImageLoader {
 public:
  ImageLoader(const ImageDataset& dataset, const ImageLoaderOptions& options);
  ~ImageLoader();
  ImageLoader(const ImageLoader&) = delete;
  ImageLoader& operator=(const ImageLoader&) = delete;

  // Returns the batch at position() and moves to the following one (into the next epoch after the
  // last batch), starting to prepare it in the background.
  ImageBatch next();
  LoaderPosition position() const { return position_; }
  // Continues from a saved position; a batch being prepared for the old position is discarded.
  void seek(LoaderPosition position);

  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  int64_t dataset_size() const { return dataset_.size(); }

 private:
  // Builds the batch at `position` on the background thread. At most one runs at a time (the
  // previous future is always waited for first), so the order cache needs no lock.
  ImageBatch prepare(LoaderPosition position);
  const std::vector<int64_t>& epoch_order(int64_t epoch);
  LoaderPosition following(LoaderPosition position) const;
  void start_prefetch();

  ImageDataset dataset_;  // images contiguous
  ImageLoaderOptions options_;
  ImageTransform transform_;
  int64_t batches_per_epoch_ = 0;
  LoaderPosition position_;
  int64_t cached_order_epoch_ = -1;     // the epoch cached_order_ belongs to
  std::vector<int64_t> cached_order_;   // (N) dataset indices in epoch order
  std::future<ImageBatch> prefetched_;  // the batch at position_, being prepared
};

}  // namespace data
