// The ViT run configuration (JSON plus command-line overrides), its model, datasets and top-1
// evaluation (apps/vit_run.h).
#include "apps/option_values.h"
#include "apps/vit_run.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>

#include "data/fashion_mnist.h"
#include "engine/autograd.h"
#include "engine/error.h"
#include "models/model_config.h"
#include "seqpe/seqpe_models.h"

namespace apps {

using engine::Tensor;
using nlohmann::json;

namespace {

constexpr int64_t kImageSide = 28;
constexpr int64_t kClasses = 10;

// Refuses keys of `object` outside `known`, naming the section.
void check_keys(const json& object, const char* section, const std::set<std::string>& known) {
  ENGINE_CHECK(object.is_object(), "train_vit config: '", section, "' must be an object");
  for (const auto& [key, value] : object.items())
    ENGINE_CHECK(known.count(key) != 0, "train_vit config: unknown field '", section, ".", key, "'");
}

// object[key] into `value` when present. The JSON type must be the field's (an integer field takes
// only integers: 6.9 steps were truncated to 6), else an error names the field.
template <typename T> void read(const json& object, const char* key, T& value) {
  if (!object.contains(key)) return;
  apps::check_override_type(key, json(value), object.at(key));
  value = object.at(key).get<T>();
}

// Synthetic 28 x 28 grey images: class k is a bright horizontal stripe at rows 2 + 2k and 3 + 2k,
// under Gaussian noise (std 0.3). Learnable in a few steps; for smoke tests without the dataset.
data::ImageDataset synthetic_images(int64_t count, uint64_t seed) {
  engine::Generator gen(seed);
  Tensor images = Tensor::empty({count, 1, kImageSide, kImageSide});
  std::vector<int64_t> labels(static_cast<size_t>(count));
  float* pixels = images.data<float>();
  for (int64_t n = 0; n < count; ++n) {
    const int64_t label = int64_t(gen.randint(kClasses));
    labels[size_t(n)] = label;
    for (int64_t y = 0; y < kImageSide; ++y)
      for (int64_t x = 0; x < kImageSide; ++x) {
        const bool stripe = y == 2 + 2 * label || y == 3 + 2 * label;
        pixels[(n * kImageSide + y) * kImageSide + x] = float((stripe ? 1.0 : 0.0) + 0.3 * gen.normal());
      }
  }
  data::ImageDataset dataset;
  dataset.images = images;
  dataset.labels = Tensor::from_indices(labels, {count});
  for (int64_t k = 0; k < kClasses; ++k) dataset.class_names.push_back("stripe " + std::to_string(k));
  return dataset;
}

// The images and labels of `dataset` at `rows`, in that order (a host copy).
data::ImageDataset rows_of(const data::ImageDataset& dataset, const std::vector<int64_t>& rows) {
  const engine::Tensor images = dataset.images.contiguous();
  const int64_t pixels = images.numel() / std::max<int64_t>(1, images.size(0));
  const std::vector<int64_t> all_labels = dataset.labels.to_vector<int64_t>();
  engine::Shape shape = images.shape();
  shape[0] = int64_t(rows.size());
  data::ImageDataset out = dataset;
  out.images = Tensor::empty(shape);
  std::vector<int64_t> labels;
  for (size_t i = 0; i < rows.size(); ++i) {
    const float* row = images.data<float>() + rows[i] * pixels;
    std::copy(row, row + pixels, out.images.data<float>() + int64_t(i) * pixels);
    labels.push_back(all_labels[size_t(rows[i])]);
  }
  out.labels = Tensor::from_indices(labels, {int64_t(rows.size())});
  return out;
}

data::ImageDataset first_images(data::ImageDataset dataset, int64_t count) {
  if (count <= 0 || count >= dataset.size()) return dataset;
  dataset.images = dataset.images.narrow(0, 0, count).contiguous();
  dataset.labels = dataset.labels.narrow(0, 0, count).contiguous();
  return dataset;
}

}  // namespace

VitRunConfig default_vit_run_config() {
  VitRunConfig c;
  c.model.image_size = kImageSide;
  c.model.patch = 4;
  c.model.in_channels = 1;
  c.model.width = 64;
  c.model.depth = 4;
  c.model.heads = 4;
  c.model.mlp_ratio = 2;
  c.model.num_classes = kClasses;
  c.model.position_encoding = "rope2d";
  c.seqpe = {{"pe_max_position", 1024},
             {"encoder", {{"heads", 2}}},
             {"transfer", {{"num_indices", 32}}},
             {"random_shift", {{"blocks", 8}}}};
  return c;
}

VitRunConfig vit_run_config_from_json(const json& j, VitRunConfig c) {
  check_keys(j, "config", {"model", "seqpe", "train", "data", "out"});
  if (j.contains("model")) {
    json model = models::vit_config_to_json(c.model);
    for (const auto& [key, value] : j.at("model").items()) model[key] = value;
    c.model = models::vit_config_from_json(model);
  }
  if (j.contains("seqpe")) {
    ENGINE_CHECK(j.at("seqpe").is_object(), "train_vit config: 'seqpe' must be an object");
    c.seqpe.merge_patch(j.at("seqpe"));
  }
  if (j.contains("train")) {
    const json& t = j.at("train");
    check_keys(t, "train",
               {"epochs", "stop_after", "steps", "batch", "lr", "min_lr", "warmup_lr", "warmup_epochs", "weight_decay", "clip",
                "seed", "threads", "crop_padding", "horizontal_flip", "zoom", "log_every", "eval_every",
                "eval_batch", "flush_denormal", "device", "tf32", "precision", "recompute", "accumulation", "checkpoint_every",
                "keep_checkpoints", "skip_nonfinite", "zero1", "allreduce_dtype"});
    auto& o = c.train;
    read(t, "epochs", o.epochs);
    read(t, "stop_after", o.stop_after);
    read(t, "steps", o.steps);
    read(t, "batch", o.batch);
    read(t, "lr", o.lr);
    read(t, "min_lr", o.min_lr);
    read(t, "warmup_lr", o.warmup_lr);
    read(t, "warmup_epochs", o.warmup_epochs);
    read(t, "weight_decay", o.weight_decay);
    read(t, "clip", o.clip);
    read(t, "seed", o.seed);
    read(t, "threads", o.threads);
    read(t, "crop_padding", o.crop_padding);
    read(t, "horizontal_flip", o.horizontal_flip);
    read(t, "zoom", o.zoom);
    read(t, "log_every", o.log_every);
    read(t, "eval_every", o.eval_every);
    read(t, "eval_batch", o.eval_batch);
    read(t, "flush_denormal", o.flush_denormal);
    read(t, "device", o.device);
    read(t, "tf32", o.tf32);
    read(t, "precision", o.precision);
    read(t, "recompute", o.recompute);
    read(t, "accumulation", o.accumulation);
    read(t, "checkpoint_every", o.checkpoint_every);
    read(t, "keep_checkpoints", o.keep_checkpoints);
    read(t, "skip_nonfinite", o.skip_nonfinite);
    read(t, "zero1", o.zero1);
    read(t, "allreduce_dtype", o.allreduce_dtype);
  }
  if (j.contains("data")) {
    const json& d = j.at("data");
    check_keys(d, "data", {"dir", "synthetic", "train_subset", "test_subset", "validation"});
    read(d, "dir", c.data.dir);
    read(d, "synthetic", c.data.synthetic);
    read(d, "train_subset", c.data.train_subset);
    read(d, "test_subset", c.data.test_subset);
    read(d, "validation", c.data.validation);
  }
  read(j, "out", c.out);
  ENGINE_CHECK(c.train.batch > 0 && c.train.epochs >= 0 && c.train.steps >= 0 && c.train.lr > 0,
               "train_vit config: batch, epochs, steps and lr must be positive");
  return c;
}

json vit_run_config_to_json(const VitRunConfig& c) {
  const auto& t = c.train;
  return {{"model", models::vit_config_to_json(c.model)},
          {"seqpe", c.seqpe},
          {"train",
           {{"epochs", t.epochs}, {"stop_after", t.stop_after}, {"steps", t.steps}, {"batch", t.batch}, {"lr", t.lr}, {"min_lr", t.min_lr},
            {"warmup_lr", t.warmup_lr}, {"warmup_epochs", t.warmup_epochs}, {"weight_decay", t.weight_decay},
            {"clip", t.clip}, {"seed", t.seed}, {"threads", t.threads},
            {"crop_padding", t.crop_padding}, {"horizontal_flip", t.horizontal_flip}, {"zoom", t.zoom},
            {"log_every", t.log_every},
            {"eval_every", t.eval_every}, {"eval_batch", t.eval_batch},
            {"flush_denormal", t.flush_denormal}, {"device", t.device}, {"tf32", t.tf32}, {"precision", t.precision},
            {"recompute", t.recompute}, {"accumulation", t.accumulation}, {"checkpoint_every", t.checkpoint_every},
            {"keep_checkpoints", t.keep_checkpoints}, {"skip_nonfinite", t.skip_nonfinite},
            {"zero1", t.zero1}, {"allreduce_dtype", t.allreduce_dtype}}},
          {"data",
           {{"dir", c.data.dir}, {"synthetic", c.data.synthetic}, {"train_subset", c.data.train_subset},
            {"test_subset", c.data.test_subset}, {"validation", c.data.validation}}},
          {"out", c.out}};
}

models::VitConfig vit_model_config(const VitRunConfig& config) {
  if (config.model.position_encoding != "seqpe") return config.model;
  ENGINE_CHECK(config.model.position_encoding_options.empty(), "train_vit config: give SeqPE's options in the "
               "'seqpe' section, not in model.position_encoding_options");
  models::VitConfig model = config.model;
  model.position_encoding_options = config.seqpe;
  return seqpe::with_full_seqpe_options(model);
}

seqpe::SeqPeOptions seqpe_options(const VitRunConfig& config) { return seqpe::seqpe_options(vit_model_config(config)); }

VitModel build_vit_model(const VitRunConfig& config, engine::Generator& init_gen) {
  const models::VitConfig model = vit_model_config(config);
  VitModel m;
  // SeqPE's dropout: seed + 4, as in every training app (apps/train/trainer.h lists the seeds).
  const auto pe = seqpe::make_position_encoding(model, init_gen, config.train.seed + 4);
  m.seqpe = std::dynamic_pointer_cast<seqpe::SeqPe>(pe);
  m.vit = std::make_unique<models::Vit>(model, init_gen, pe);
  return m;
}

TrainingSplit load_training_split(const VitRunConfig& config) {
  data::ImageDataset all;
  if (config.data.synthetic > 0) {
    all = first_images(synthetic_images(config.data.synthetic, 1), config.data.train_subset);
  } else {
    data::FashionMnistOptions options;
    options.dir = config.data.dir;
    all = first_images(data::load_fashion_mnist(data::FashionMnistSplit::train, options), config.data.train_subset);
  }
  const int64_t held_out = config.data.validation, count = all.size();
  if (held_out == 0) return {all, {}};
  ENGINE_CHECK(held_out > 0 && held_out < count, "train_vit config: data.validation must be in [0, ", count,
               ") (the training images left after data.train_subset), got ", held_out);
  // Fisher-Yates: the first `held_out` of the permutation are validation, the rest (in dataset
  // order, as without a split) are trained on.
  std::vector<int64_t> order(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) order[size_t(i)] = i;
  engine::Generator gen(kValidationSeed);
  for (int64_t i = 0; i < held_out; ++i)
    std::swap(order[size_t(i)], order[size_t(i + int64_t(gen.randint(uint64_t(count - i))))]);
  const std::vector<int64_t> validation(order.begin(), order.begin() + held_out);
  std::vector<int64_t> train(order.begin() + held_out, order.end());
  std::sort(train.begin(), train.end());
  return {rows_of(all, train), rows_of(all, validation)};
}

data::ImageDataset load_test_set(const VitRunConfig& config) {
  if (config.data.synthetic > 0)
    return first_images(synthetic_images(std::max<int64_t>(1, config.data.synthetic / 4), 2), config.data.test_subset);
  data::FashionMnistOptions options;
  options.dir = config.data.dir;
  return first_images(data::load_fashion_mnist(data::FashionMnistSplit::test, options), config.data.test_subset);
}

Accuracy evaluate(models::Vit& model, const Tensor& images, const Tensor& labels, int64_t batch) {
  ENGINE_CHECK(batch > 0, "evaluation batch must be positive, got ", batch);
  const engine::Device device = model.parameters().front().device();
  const bool was_training = model.is_training();
  model.eval();
  engine::NoGradGuard no_grad;
  engine::Generator unused(0);
  const std::vector<int64_t> truth = labels.to_vector<int64_t>();
  const int64_t n = images.size(0);
  int64_t correct = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int64_t first = 0; first < n; first += batch) {
    const int64_t b = std::min(batch, n - first);
    const Tensor batch_images = images.narrow(0, first, b).contiguous().to(device);
    const std::vector<float> logits = model.forward(batch_images, unused).contiguous().to_vector<float>();
    const int64_t k = int64_t(logits.size()) / b;
    for (int64_t i = 0; i < b; ++i) {
      const float* row = logits.data() + i * k;
      const int64_t predicted = std::max_element(row, row + k) - row;
      correct += predicted == truth[size_t(first + i)];
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  model.train(was_training);
  return {n > 0 ? double(correct) / double(n) : 0.0, seconds > 0 ? double(n) / seconds : 0.0};
}

}  // namespace apps
