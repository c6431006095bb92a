// What train_vit and eval_vit share: the run configuration (JSON plus command-line overrides), the
// model it builds (ViT with any 2-D position encoding, SeqPE in the image setting of docs/method.md#image-classification
// scaled to a 7 x 7 training grid), the datasets (Fashion-MNIST or synthetic stripes) and
// top-1 evaluation.
//   N = images, B = batch, K = classes
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/image_dataset.h"
#include "models/vit.h"
#include "seqpe/seqpe_options.h"
#include "seqpe/seqpe_position_encoding.h"

namespace apps {

struct VitTrainSettings {
  int64_t epochs = 10;
  int64_t stop_after = 0;  // > 0: end after this step as if interrupted (the schedule still spans the run)
  int64_t steps = 0;  // > 0: train this many steps instead of `epochs` epochs
  int64_t batch = 128;
  double lr = 1e-3;
  double min_lr = 1e-5;
  double warmup_lr = 1e-6;
  double warmup_epochs = 1;
  double weight_decay = 0.05;
  double clip = 5.0;
  uint64_t seed = 0;
  int threads = 0;  // 0: OMP_NUM_THREADS
  int64_t crop_padding = 2;
  bool horizontal_flip = true;
  double zoom = 1;  // > 1: random zoom in by a factor drawn in [1, zoom] (data/image_transforms.h)
  int64_t log_every = 50;
  int64_t eval_every = 0;   // steps between evaluations; 0: once per epoch
  int64_t eval_batch = 500;
  bool flush_denormal = true;  // engine::set_flush_denormal: SeqPE runs twice as fast (docs/results/vit.md)
  // The trainer's (apps/train/trainer.h).
  std::string device = "cpu";  // "cpu" or "cuda"
  bool tf32 = true;            // f32 GEMMs on TF32 tensor cores (GPUs)
  std::string precision = "fp32";  // "fp32" or "bf16" matrix products (apps/train/device_setup.h)
  std::string recompute = "none";  // activations recomputed in the backward (models/recompute.h)
  int64_t accumulation = 1;    // micro-batches per step (batch / accumulation images each)
  int64_t checkpoint_every = 0;
  int64_t keep_checkpoints = 3;
  bool skip_nonfinite = false;
  bool zero1 = false;          // optimizer state sharded over the ranks (ZeRO-1)
  std::string allreduce_dtype = "fp32";  // the gradient all-reduce in "fp32" or "bf16" (NCCL only)
};

struct VitDataSettings {
  std::string dir = "/usr/share/datasets/fashion-mnist";
  int64_t synthetic = 0;  // > 0: that many synthetic training images (and a quarter as many test)
  int64_t train_subset = 0;  // > 0: the first n training images
  int64_t test_subset = 0;   // > 0: the first n test images
  // > 0: that many training images (after train_subset), the same ones in every run, are held out
  // as the validation set that picks the best epoch; 0: the test set picks it.
  int64_t validation = 0;
};

struct VitRunConfig {
  models::VitConfig model;
  // SeqPE's options (seqpe/seqpe_options.h), the model's position_encoding_options when its
  // position_encoding is "seqpe"; absent fields take the reference's image values (docs/method.md#image-classification) sized to the model.
  // The app's defaults suit the small ViT: PE_MAX_POSITION 1024 (a 32 x 32 grid covering every
  // evaluation grid, 2 digits per coordinate), 2 encoder heads, 32 distillation indices (<= the 49
  // cells of the 7 x 7 block), P = 8 shifted blocks.
  nlohmann::json seqpe;
  VitTrainSettings train;
  VitDataSettings data;
  std::string out = "runs/vit";
};

// The defaults: a ViT for 28 x 28 Fashion-MNIST, patch 4 (7 x 7 grid), width 64, depth 4, 4 heads,
// rope2d.
VitRunConfig default_vit_run_config();
// `json` ({"model": {...}, "seqpe": {...}, "train": {...}, "data": {...}, "out": "..."}) over
// `base`: absent fields keep their value, unknown ones are refused ("seqpe" is merged field by
// field and checked when the model is built).
VitRunConfig vit_run_config_from_json(const nlohmann::json& json, VitRunConfig base);
nlohmann::json vit_run_config_to_json(const VitRunConfig& config);

// The ViT and, for "seqpe", its SeqPE (also registered in the model as "pe").
struct VitModel {
  std::unique_ptr<models::Vit> vit;
  std::shared_ptr<seqpe::SeqPe> seqpe;  // null for the other encodings
};
VitModel build_vit_model(const VitRunConfig& config, engine::Generator& init_gen);

// The model config the run describes: for "seqpe", the run's SeqPE options written out in full as
// its position_encoding_options.
models::VitConfig vit_model_config(const VitRunConfig& config);
// SeqPE's options for a "seqpe" run: the PE, its samplers (sized to the 7 x 7 training grid) and its clipping.
seqpe::SeqPeOptions seqpe_options(const VitRunConfig& config);

// The training set the config names (train_subset applied), split into the images trained on and
// the data.validation images held out (empty when 0). The held-out images are drawn by a
// permutation of fixed seed (kValidationSeed), whatever the run's seed, so every run of a
// comparison holds out the same ones.
inline constexpr uint64_t kValidationSeed = 20261207;
struct TrainingSplit {
  data::ImageDataset train;
  data::ImageDataset validation;
};
TrainingSplit load_training_split(const VitRunConfig& config);
// The test set the config names, test_subset applied.
data::ImageDataset load_test_set(const VitRunConfig& config);

struct Accuracy {
  double top1 = 0;
  double images_per_second = 0;
};
// Top-1 accuracy of the model (in evaluation mode, without gradients, on its parameters' device) on
// images (N, C, H, W) with labels (N), `batch` > 0 images at a time; restores training mode afterwards.
Accuracy evaluate(models::Vit& model, const engine::Tensor& images, const engine::Tensor& labels, int64_t batch);

}  // namespace apps
