// Tests of apps/vit_run.h: the validation split held out of the training set.
#include "apps/vit_run.h"

#include <doctest/doctest.h>

#include <map>
#include <vector>

#include "engine/error.h"

namespace {

// Each image of `dataset` (as its pixel values) with its label.
std::vector<std::pair<std::vector<float>, int64_t>> image_rows(const data::ImageDataset& dataset) {
  const std::vector<float> pixels = dataset.images.contiguous().to_vector<float>();
  const std::vector<int64_t> labels = dataset.labels.to_vector<int64_t>();
  const size_t per_image = pixels.size() / labels.size();
  std::vector<std::pair<std::vector<float>, int64_t>> rows;
  for (size_t i = 0; i < labels.size(); ++i) {
    const auto first = pixels.begin() + long(i * per_image);
    rows.emplace_back(std::vector<float>(first, first + long(per_image)), labels[i]);
  }
  return rows;
}

}  // namespace

TEST_CASE("vit_run: the validation split holds out the same images in every run, the rest trains") {
  apps::VitRunConfig config = apps::default_vit_run_config();
  config.data.synthetic = 100;
  config.data.validation = 30;
  const apps::TrainingSplit split = apps::load_training_split(config);
  CHECK(split.validation.size() == 30);
  CHECK(split.train.size() == 70);

  // Every training image lands in exactly one part, with its label (the noisy synthetic images are
  // all distinct).
  config.data.validation = 0;
  const apps::TrainingSplit whole = apps::load_training_split(config);
  CHECK(whole.validation.size() == 0);
  REQUIRE(whole.train.size() == 100);
  std::map<std::vector<float>, int64_t> seen;
  for (const auto& [pixels, label] : image_rows(whole.train)) seen[pixels] = label;
  REQUIRE(seen.size() == 100);
  std::map<std::vector<float>, int> uses;
  for (const auto* part : {&split.train, &split.validation})
    for (const auto& [pixels, label] : image_rows(*part)) {
      REQUIRE(seen.count(pixels) == 1);
      CHECK(seen.at(pixels) == label);
      ++uses[pixels];
    }
  CHECK(uses.size() == 100);
  for (const auto& [pixels, count] : uses) CHECK(count == 1);

  // The held-out images do not depend on the run's seed; they are not simply the first or last 30.
  config.data.validation = 30;
  config.train.seed = 12345;
  const apps::TrainingSplit other_seed = apps::load_training_split(config);
  CHECK(image_rows(other_seed.validation) == image_rows(split.validation));
  const auto all = image_rows(whole.train);
  const auto held_out = image_rows(split.validation);
  CHECK(held_out != std::vector<std::pair<std::vector<float>, int64_t>>(all.begin(), all.begin() + 30));
  CHECK(held_out != std::vector<std::pair<std::vector<float>, int64_t>>(all.end() - 30, all.end()));

  config.data.validation = 100;
  CHECK_THROWS_WITH_AS(apps::load_training_split(config),
                       doctest::Contains("data.validation must be in [0, 100)"), engine::Error);
}
