// Tests of the image loader (data/image_loader.h): epochs, determinism, augmentation, resume,
// shards.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "data/image_loader.h"
#include "engine/error.h"

using doctest::Contains;

namespace {

// N images (1, H, W) where image n holds 1000 n + 1, 1000 n + 2, ... and has label n, so a batch
// shows which images it took and what the transforms did to them.
data::ImageDataset numbered_dataset(int64_t count, int64_t height, int64_t width) {
  std::vector<double> pixels;
  std::vector<int64_t> labels;
  for (int64_t n = 0; n < count; ++n) {
    for (int64_t i = 0; i < height * width; ++i) pixels.push_back(double(1000 * n + i + 1));
    labels.push_back(n);
  }
  data::ImageDataset dataset;
  dataset.images = engine::Tensor::from_vector(pixels, {count, 1, height, width});
  dataset.labels = engine::Tensor::from_indices(labels, {count});
  return dataset;
}

data::ImageLoaderOptions augmenting_options(int64_t batch_size, uint64_t seed) {
  data::ImageLoaderOptions options;
  options.batch_size = batch_size;
  options.seed = seed;
  options.transforms.crop_padding = 1;
  options.transforms.horizontal_flip = true;
  return options;
}

std::vector<float> values(const engine::Tensor& t) { return t.to_vector<float>(); }
std::vector<int64_t> indices(const engine::Tensor& t) { return t.to_vector<int64_t>(); }

}  // namespace

TEST_CASE("image loader: every epoch is a fresh permutation; the last batch is smaller unless dropped") {
  const data::ImageDataset dataset = numbered_dataset(10, 3, 3);
  data::ImageLoader loader(dataset, augmenting_options(4, 5));
  CHECK(loader.batches_per_epoch() == 3);
  std::vector<std::vector<int64_t>> orders;
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    std::vector<int64_t> order;
    for (int64_t b = 0; b < 3; ++b) {
      CHECK(loader.position() == data::LoaderPosition{epoch, b});
      const data::ImageBatch batch = loader.next();
      CHECK(batch.position == data::LoaderPosition{epoch, b});
      CHECK(batch.images.shape() == engine::Shape{b < 2 ? 4 : 2, 1, 3, 3});
      for (const int64_t label : indices(batch.labels)) order.push_back(label);
    }
    std::vector<int64_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    orders.push_back(order);
  }
  CHECK(orders[0] != orders[1]);
  CHECK(orders[1] != orders[2]);

  data::ImageLoaderOptions in_order;
  in_order.batch_size = 4;
  in_order.shuffle = false;
  in_order.drop_last = true;
  data::ImageLoader plain(dataset, in_order);
  CHECK(plain.batches_per_epoch() == 2);
  const data::ImageBatch first = plain.next();
  CHECK(indices(first.labels) == std::vector<int64_t>{0, 1, 2, 3});
  // Without transforms the images are the dataset's own.
  const std::vector<float> all = values(dataset.images);
  CHECK(values(first.images) == std::vector<float>(all.begin(), all.begin() + 36));
  CHECK(indices(plain.next().labels) == std::vector<int64_t>{4, 5, 6, 7});
  CHECK(indices(plain.next().labels) == std::vector<int64_t>{0, 1, 2, 3});  // epoch 1
  CHECK(plain.position() == data::LoaderPosition{1, 1});
}

TEST_CASE("image loader: batches depend on the seed only, not on the consumer's timing") {
  const data::ImageDataset dataset = numbered_dataset(13, 4, 5);
  data::ImageLoader fast(dataset, augmenting_options(5, 21));
  data::ImageLoader slow(dataset, augmenting_options(5, 21));
  data::ImageLoader other_seed(dataset, augmenting_options(5, 22));
  bool seeds_differ = false;
  for (int step = 0; step < 8; ++step) {  // across epoch boundaries (3 batches per epoch)
    CAPTURE(step);
    const data::ImageBatch a = fast.next();
    // The background thread has finished (or not) the next batch before the consumer asks.
    std::this_thread::sleep_for(std::chrono::milliseconds(step % 3));
    const data::ImageBatch b = slow.next();
    CHECK(indices(a.labels) == indices(b.labels));
    CHECK(values(a.images) == values(b.images));
    const data::ImageBatch c = other_seed.next();
    seeds_differ = seeds_differ || indices(a.labels) != indices(c.labels) || values(a.images) != values(c.images);
  }
  CHECK(seeds_differ);
}

TEST_CASE("image loader: augmented images are crops and flips of the labelled image") {
  // Pixels not from image n (label n) are the padding, which defaults to the dataset's black:
  // (0 - mean) / std when the dataset says it is normalised.
  data::ImageDataset dataset = numbered_dataset(6, 4, 4);
  dataset.mean = {0.5f};
  dataset.std = {0.25f};
  data::ImageLoader loader(dataset, augmenting_options(6, 3));
  bool saw_padding = false;
  for (int epoch = 0; epoch < 3; ++epoch) {
    const data::ImageBatch batch = loader.next();
    const std::vector<int64_t> labels = indices(batch.labels);
    const std::vector<float> pixels = values(batch.images);
    for (size_t b = 0; b < labels.size(); ++b)
      for (size_t i = 0; i < 16; ++i) {
        const float v = pixels[b * 16 + i];
        const bool from_image = v >= float(1000 * labels[b] + 1) && v <= float(1000 * labels[b] + 16);
        CHECK((from_image || v == -2.0f));
        saw_padding = saw_padding || v == -2.0f;
      }
  }
  CHECK(saw_padding);
}

TEST_CASE("image loader: a loader moved to a saved position continues as the uninterrupted one") {
  const data::ImageDataset dataset = numbered_dataset(11, 3, 4);
  data::ImageLoader uninterrupted(dataset, augmenting_options(3, 9));
  std::vector<data::ImageBatch> reference;
  for (int step = 0; step < 10; ++step) reference.push_back(uninterrupted.next());

  for (const int saved_after : {0, 2, 4, 7}) {  // 4 batches per epoch: mid-epoch and boundaries
    CAPTURE(saved_after);
    data::ImageLoader first_run(dataset, augmenting_options(3, 9));
    for (int step = 0; step < saved_after; ++step) first_run.next();
    const data::LoaderPosition saved = first_run.position();
    data::ImageLoader resumed(dataset, augmenting_options(3, 9));
    resumed.next();  // a used loader can be moved too
    resumed.seek(saved);
    CHECK(resumed.position() == saved);
    for (int step = saved_after; step < 10; ++step) {
      const data::ImageBatch batch = resumed.next();
      CHECK(batch.position == reference[size_t(step)].position);
      CHECK(indices(batch.labels) == indices(reference[size_t(step)].labels));
      CHECK(values(batch.images) == values(reference[size_t(step)].images));
    }
  }
  data::ImageLoader loader(dataset, augmenting_options(3, 9));
  CHECK_THROWS_WITH_AS(loader.seek({0, 4}), Contains("cannot seek to epoch 0 batch 4: an epoch has 4 batches"),
                       engine::Error);
}

TEST_CASE("image loader: evaluation resize and normalisation, and configuration errors") {
  const data::ImageDataset dataset = numbered_dataset(5, 2, 2);
  data::ImageLoaderOptions evaluation;
  evaluation.batch_size = 2;
  evaluation.shuffle = false;
  evaluation.transforms.resize_height = 3;
  evaluation.transforms.resize_width = 4;
  evaluation.transforms.mean = {1.0f};
  evaluation.transforms.std = {2.0f};
  data::ImageLoader loader(dataset, evaluation);
  const data::ImageBatch batch = loader.next();
  CHECK(batch.images.shape() == engine::Shape{2, 1, 3, 4});
  std::vector<float> expected(12);
  const std::vector<float> source = {1001, 1002, 1003, 1004};
  data::resize_image(source.data(), 1, 2, 2, expected.data(), 3, 4, data::ResizeMode::bilinear);
  for (float& v : expected) v = (v - 1.0f) / 2.0f;
  const std::vector<float> both = values(batch.images);
  const std::vector<float> second(both.begin() + 12, both.end());
  CHECK(second == expected);

  data::ImageLoaderOptions too_big;
  too_big.batch_size = 6;
  too_big.drop_last = true;
  CHECK_THROWS_WITH_AS(data::ImageLoader(dataset, too_big), Contains("leaves no batch of a dataset of 5 images"),
                       engine::Error);
  data::ImageDataset mismatched = dataset;
  mismatched.labels = engine::Tensor::from_indices({0, 1}, {2});
  CHECK_THROWS_WITH_AS(data::ImageLoader(mismatched, {}), Contains("labels must be (N) i64 with N = 5"), engine::Error);
}

TEST_CASE("image loader: shards hold the ranks' rows of the batch one loader would make") {
  const data::ImageDataset dataset = numbered_dataset(13, 4, 5);
  data::ImageLoaderOptions options = augmenting_options(6, 21);
  options.drop_last = true;
  data::ImageLoader whole(dataset, options);
  std::vector<std::unique_ptr<data::ImageLoader>> shards;
  for (int64_t r = 0; r < 3; ++r) {
    options.shard = {r, 3};
    shards.push_back(std::make_unique<data::ImageLoader>(dataset, options));
  }
  for (int step = 0; step < 5; ++step) {  // across epoch boundaries (2 batches per epoch)
    CAPTURE(step);
    const data::ImageBatch all = whole.next();
    std::vector<int64_t> labels;
    std::vector<float> pixels;
    for (auto& shard : shards) {
      const data::ImageBatch part = shard->next();
      CHECK(part.images.size(0) == 2);
      CHECK(part.position == all.position);
      const auto l = indices(part.labels);
      const auto p = values(part.images);
      labels.insert(labels.end(), l.begin(), l.end());
      pixels.insert(pixels.end(), p.begin(), p.end());
    }
    CHECK(labels == indices(all.labels));
    CHECK(pixels == values(all.images));
  }
  options.shard = {0, 4};
  CHECK_THROWS_WITH_AS(data::ImageLoader(dataset, options), Contains("does not split into 4"), engine::Error);
  options.shard = {0, 3};
  options.drop_last = false;
  CHECK_THROWS_WITH_AS(data::ImageLoader(dataset, options), Contains("needs drop_last"), engine::Error);
}
