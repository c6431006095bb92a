// What train_vit and eval_vit share: the run configuration (JSON plus command-line overrides), the
// model it builds (ViT with any 2-D position encoding, SeqPE in the image setting of SEQPE_SPEC.md
// §11 scaled to a 7 x 7 training grid), the datasets (Fashion-MNIST or synthetic stripes) and
// top-1 evaluation.
//   N = images, B = batch, K = classes
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/image_dataset.h"
#include "models/vit.h"
#include "seqpe/contrastive_sampler.h"
#include "seqpe/main_position_sampler.h"
#include "seqpe/seqpe_position_encoding.h"
#include "seqpe/transfer_sampler.h"

namespace vit_app {

// SeqPE sizes for a small ViT: the encoder as wide as the model, PE_MAX_POSITION a square grid
// (1024 = 32 x 32, 2 digits per coordinate) covering every evaluation grid.
struct SeqPeSettings {
  int64_t channels = 0;  // 0: the model width
  int64_t heads = 2;
  int64_t layers = 2;
  int64_t pe_max_position = 1024;
  int64_t max_digits = 2;
  double residual_dropout = 0.1;
  double contrastive_weight = 0.1;
  double transfer_weight = 0.1;
  int64_t contrastive_batch = 32;
  int64_t contrastive_candidates = 64;
  int64_t transfer_batch = 32;
  int64_t transfer_indices = 32;  // <= the 49 cells of the 7 x 7 block
  int64_t blocks_per_shifted_step = 8;
};

struct TrainSettings {
  int64_t epochs = 10;
  int64_t steps = 0;  // > 0: train this many steps instead of `epochs` epochs
  int64_t batch = 128;
  double lr = 1e-3;
  double min_lr = 1e-5;
  double warmup_lr = 1e-6;
  double warmup_epochs = 1;
  double weight_decay = 0.05;
  double clip = 5.0;
  double seqpe_clip = 5.0;
  uint64_t seed = 0;
  int threads = 0;  // 0: OMP_NUM_THREADS
  int64_t crop_padding = 2;
  bool horizontal_flip = true;
  int64_t log_every = 50;
  int64_t eval_every = 0;   // steps between evaluations; 0: once per epoch
  int64_t eval_batch = 500;
};

struct DataSettings {
  std::string dir = "/usr/share/datasets/fashion-mnist";
  int64_t synthetic = 0;  // > 0: that many synthetic training images (and a quarter as many test)
  int64_t train_subset = 0;  // > 0: the first n training images
  int64_t test_subset = 0;   // > 0: the first n test images
};

struct RunConfig {
  models::ViTConfig model;
  SeqPeSettings seqpe;
  TrainSettings train;
  DataSettings data;
  std::string out = "runs/vit";
};

// The defaults: a ViT for 28 x 28 Fashion-MNIST, patch 4 (7 x 7 grid), width 64, depth 4, 4 heads,
// rope2d.
RunConfig default_run_config();
// `json` ({"model": {...}, "seqpe": {...}, "train": {...}, "data": {...}, "out": "..."}) over
// `base`: absent fields keep their value, unknown ones are refused.
RunConfig run_config_from_json(const nlohmann::json& json, RunConfig base);
nlohmann::json run_config_to_json(const RunConfig& config);
// Applies "--name value" overrides (see train_vit's usage); returns the arguments not understood.
std::vector<std::string> apply_overrides(RunConfig& config, const std::vector<std::string>& args);

// The ViT and, for "seqpe", its SeqPE (also registered in the model as "pe").
struct Model {
  std::unique_ptr<models::ViT> vit;
  std::shared_ptr<seqpe::SeqPe> seqpe;  // null for the other encodings
};
Model build_model(const RunConfig& config, engine::Generator& init_gen);

// The samplers of SeqPE's training step, sized to the 7 x 7 training grid and PE_MAX_POSITION.
seqpe::MainPositionSamplerConfig main_sampler_config(const RunConfig& config);
seqpe::ContrastiveSamplerConfig contrastive_sampler_config(const RunConfig& config);
seqpe::TransferSamplerConfig transfer_sampler_config(const RunConfig& config);

// The training and test sets the config names, subsets applied.
data::ImageDataset load_train_set(const RunConfig& config);
data::ImageDataset load_test_set(const RunConfig& config);

struct Accuracy {
  double top1 = 0;
  double images_per_second = 0;
};
// Top-1 accuracy of the model (in evaluation mode, without gradients) on images (N, C, H, W) with
// labels (N); restores training mode afterwards.
Accuracy evaluate(models::ViT& model, const engine::Tensor& images, const engine::Tensor& labels, int64_t batch);

}  // namespace vit_app
