// Trains a ViT classifier on Fashion-MNIST (28 x 28, patch 4: a 7 x 7 grid) with any 2-D position
// encoding (docs/method.md#image-classification scaled down): AdamW (weight decay on matrices only; none on norms,
// biases, pos_embed, cls_token or any PE parameter), linear warm-up then cosine per step, gradient
// clipping of the model and of SeqPE apart. SeqPE adds its auxiliary losses (contrastive and
// transfer) from one encoder forward per step, with random-shift main positions. The loop is the
// trainer's (apps/train/trainer.h); this file is the image-classification task.
//
// Usage: train_vit [--config FILE.json] [--pe ape|nope|sin|rope|rope2d|rope_mixed|seqpe] [--epochs E | --steps S]
//                  [--stop-after N] [--batch B] [--lr LR] [--seed S] [--threads N] [--out DIR] [--width C] [--depth L]
//                  [--heads H] [--log-every N] [--eval-every N] [--data DIR] [--synthetic N]
//                  [--train-subset N] [--test-subset N] [--validation N] [--device cpu|cuda] [--tf32 0|1]
//                  [--precision fp32|bf16] [--recompute none|gelu|block]
//                  [--accumulation A] [--resume CHECKPOINT|latest]
// Writes into DIR (apps/train/run_folder.h): run.json (the resolved config), metrics.jsonl (a line
// per logged step: loss, lr, images/s; a line per evaluation: epoch, validation or test accuracy,
// evaluation images/s, the mean training loss since the last one), best.ckpt.safetensors (the best
// accuracy on the validation set held out of the training set with --validation N, else on the test set)
// and last.ckpt.safetensors (latest, each with its .model.json), and step_<N>.ckpt.safetensors when
// train.checkpoint_every is set. A run continues with --resume latest (or a checkpoint path); the
// command line's options then apply over the checkpoint's config. A resumed run is identical to an
// uninterrupted one, SeqPE included. --stop-after N ends the run after step N (an evaluation and
// checkpoint are made there) as if interrupted.
// Data parallel: `mpirun -np N train_vit ...` trains on N ranks, --batch being the global batch
// (apps/dist_job.h has the conventions; rank 0 prints, evaluates and writes the files).
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>

#include "apps/attention_options.h"
#include "apps/cli_options.h"
#include "apps/dist_job.h"
#include "apps/train/device_setup.h"
#include "apps/train/run_folder.h"
#include "apps/train/seqpe_objective.h"
#include "apps/train/trainer.h"
#include "apps/vit_run.h"
#include "data/image_loader.h"
#include "engine/checkpoint.h"
#include "engine/denormals.h"
#include "engine/error.h"
#include "engine/json_read.h"
#include "models/model_config.h"
#include "models/recompute.h"
#include "ops/cross_entropy.h"

namespace {

using engine::Tensor;
using nlohmann::json;

// The run config (defaults, or a resumed checkpoint's config; then --config FILE; then the other
// options) and the checkpoint to resume, if any.
struct Arguments {
  apps::VitRunConfig config;
  std::string resume;
};

Arguments parse_arguments(int argc, char** argv) {
  static const std::vector<apps::ConfigFlag> flags = {
      {"--pe", "/model/position_encoding", "position encoding: ape, sin, rope, rope2d, rope_mixed, seqpe or nope"},
      {"--epochs", "/train/epochs", "epochs to train (unless --steps)"},
      {"--steps", "/train/steps", "optimizer steps instead of --epochs epochs (0: use --epochs)"},
      {"--stop-after", "/train/stop_after", "end after this step as if interrupted (0: never)"},
      {"--batch", "/train/batch", "images per step (global: over every rank)"},
      {"--lr", "/train/lr", "peak learning rate"},
      {"--seed", "/train/seed", "seed of the initialisation, data order and augmentation"},
      {"--threads", "/train/threads", "OpenMP threads (0: OMP_NUM_THREADS)"},
      {"--out", "/out", "run folder: checkpoints, run.json, metrics.jsonl"},
      {"--width", "/model/width", "channels C"},
      {"--depth", "/model/depth", "transformer blocks"},
      {"--heads", "/model/heads", "attention heads H"},
      {"--log-every", "/train/log_every", "steps between logged lines"},
      {"--eval-every", "/train/eval_every", "steps between test evaluations (0: once per epoch)"},
      {"--accumulation", "/train/accumulation", "micro-batches per step"},
      {"--data", "/data/dir", "Fashion-MNIST folder (IDX files)"},
      {"--synthetic", "/data/synthetic", "train on that many synthetic images instead (0: Fashion-MNIST)"},
      {"--train-subset", "/data/train_subset", "the first N training images only (0: all)"},
      {"--test-subset", "/data/test_subset", "the first N test images only (0: all)"},
      {"--validation", "/data/validation",
       "training images held out (fixed seed) to pick the best epoch (0: the test set picks it)"}};
  std::string config_file, resume;
  json overrides = json::object();
  apps::CommandLine cli("train_vit", "Trains a ViT classifier on Fashion-MNIST with any 2-D position encoding.",
                        "train_vit --pe seqpe --epochs 10 --threads 2 --out runs/vit/seqpe");
  cli.option("--config", config_file,
             "run config (JSON: model, seqpe, train, data, out sections) over the defaults, under the options");
  cli.option("--resume", resume, "checkpoint to resume, or 'latest': the newest complete one in --out");
  const json defaults = apps::vit_run_config_to_json(apps::default_vit_run_config());
  cli.config_flags(flags, defaults, overrides);
  cli.config_flags(apps::device_flags("/train/"), defaults, overrides);
  apps::attention_options(cli);
  cli.parse(argc, argv);
  const auto resolve = [&](apps::VitRunConfig config) {
    if (!config_file.empty()) {
      try {
        config = apps::vit_run_config_from_json(engine::read_json_file(config_file), config);
      } catch (const engine::Error& e) {
        throw engine::Error(config_file + ": " + e.what());  // a field's error names the file too
      }
    }
    return apps::vit_run_config_from_json(overrides, config);
  };
  Arguments out{resolve(apps::default_vit_run_config()), resume};
  if (resume.empty()) return out;
  if (resume == "latest") {
    const auto latest = apps::train::latest_checkpoint(out.config.out);
    ENGINE_CHECK(latest, "--resume latest found no complete checkpoint in ", out.config.out,
                 " (pass the run's --out, or a checkpoint file)");
    out.resume = latest->string();
  }
  const json saved = engine::load_checkpoint(out.resume).extra.at("config");
  out.config = resolve(apps::vit_run_config_from_json(saved, apps::default_vit_run_config()));
  return out;
}

// Three groups: decayed matrices; norms, biases, cls_token and pos_embed; the PE module ("pe.*").
// SeqPE's parameters are clipped apart; another encoding's learned parameters (RoPE-Mixed's
// frequencies, also under "pe.") are clipped with the model's.
apps::train::ParameterPlan parameter_plan(const engine::Module& model, const apps::VitTrainSettings& t, bool seqpe,
                                    double seqpe_clip) {
  engine::optim::NamedTensors decay, no_decay, pe;
  for (const auto& [name, p] : model.named_parameters()) {
    if (name.rfind("pe.", 0) == 0) pe.emplace_back(name, p);
    else if (p.dim() < 2 || name == "cls_token" || name == "pos_embed") no_decay.emplace_back(name, p);
    else decay.emplace_back(name, p);
  }
  apps::train::ParameterPlan plan;
  apps::train::ClipSet main{{}, t.clip}, seqpe_set{{}, seqpe_clip};
  for (auto* group : {&decay, &no_decay, &pe}) {
    if (group->empty()) continue;
    (seqpe && group == &pe ? seqpe_set : main).groups.push_back(plan.optimizer_groups.size());
    plan.optimizer_groups.push_back({*group, t.lr, group == &decay ? t.weight_decay : 0.0});
  }
  plan.clip_sets.push_back(std::move(main));
  if (!seqpe_set.groups.empty()) plan.clip_sets.push_back(std::move(seqpe_set));
  return plan;
}

// Cross-entropy on augmented training images; top-1 accuracy on the held-out validation images, or
// on the test set when none are held out.
class ImageClassification : public apps::train::TrainingTask {
 public:
  ImageClassification(const apps::VitRunConfig& config, apps::Job& job)
      : config_(config), split_(apps::load_training_split(config)),
        eval_name_(config.data.validation > 0 ? "validation" : "test"),
        eval_set_(config.data.validation > 0 ? split_.validation : apps::load_test_set(config)),
        init_gen_(config.train.seed), model_(apps::build_vit_model(config, init_gen_)),
        loader_(split_.train, loader_options(config, job)) {
    ENGINE_CHECK(loader_.batches_per_epoch() > 0, "the training set's ", split_.train.size(),
                 " images give no batch of ", config.train.batch);
    // Refused here, before any step, rather than as a meaningless accuracy at the first evaluation.
    ENGINE_CHECK(eval_set_.size() > 0, "the ", eval_name_, " set (",
                 config.data.synthetic > 0 ? "synthetic" : config.data.dir, ") holds no image: nothing to ",
                 "evaluate the run on");
  }

  models::Vit& vit() { return *model_.vit; }
  const apps::VitModel& model() const { return model_; }
  // Optimizer steps per epoch (accumulation micro-batches each).
  int64_t steps_per_epoch() const { return loader_.batches_per_epoch() / config_.train.accumulation; }

  void describe(int64_t total_steps) const {
    const auto& m = config_.model;
    std::printf("train_vit: pe %s, width %lld, depth %lld, heads %lld, %lld parameters; %lld training images, "
                "%lld %s; batch %lld, %lld steps (%lld per epoch); %d threads\n",
                m.position_encoding.c_str(), (long long)m.width, (long long)m.depth, (long long)m.heads,
                (long long)model_.vit->parameter_count(), (long long)split_.train.size(), (long long)eval_set_.size(),
                eval_name_.c_str(),
                (long long)config_.train.batch, (long long)total_steps, (long long)steps_per_epoch(),
                omp_get_max_threads());
  }

  Tensor next_loss(engine::Device device, engine::Generator& dropout) override {
    const data::ImageBatch batch = loader_.next();
    return ops::cross_entropy(model_.vit->forward(batch.images.to(device), dropout), batch.labels.to(device));
  }

  apps::train::Validation validate() override {
    const apps::Accuracy accuracy =
        apps::evaluate(*model_.vit, eval_set_.images, eval_set_.labels, config_.train.eval_batch);
    char summary[96];
    std::snprintf(summary, sizeof summary, "%s top-1 %.4f (%.0f images/s)", eval_name_.c_str(), accuracy.top1,
                  accuracy.images_per_second);
    const double epoch = double(loader_.position().epoch) + double(loader_.position().batch) /
                                                                double(loader_.batches_per_epoch());
    return {{{"epoch", epoch},
             {eval_name_ + "_accuracy", accuracy.top1},
             {"eval_images_per_s", accuracy.images_per_second}},
            accuracy.top1, summary};
  }

  json data_position() const override {
    return {{"data_epoch", loader_.position().epoch}, {"data_batch", loader_.position().batch}};
  }
  void restore_data_position(const json& extra) override {
    loader_.seek({extra.at("data_epoch").get<int64_t>(), extra.at("data_batch").get<int64_t>()});
  }

  json model_json() const override {
    return {{"config", apps::vit_run_config_to_json(config_)},
            {"model", models::vit_config_to_json(apps::vit_model_config(config_))}};
  }

 private:
  // Micro-batches of batch / accumulation images (this rank's shard of them), shuffled with seed + 2.
  static data::ImageLoaderOptions loader_options(const apps::VitRunConfig& config, const apps::Job& job) {
    const auto& t = config.train;
    ENGINE_CHECK(t.accumulation > 0 && t.batch % t.accumulation == 0, "batch ", t.batch,
                 " does not split into ", t.accumulation, " micro-batches (train.accumulation)");
    data::ImageLoaderOptions options;
    options.batch_size = t.batch / t.accumulation;
    options.drop_last = true;
    options.seed = t.seed + 2;
    options.shard = job.shard();
    options.transforms.crop_padding = t.crop_padding;
    options.transforms.horizontal_flip = t.horizontal_flip;
    options.transforms.max_zoom = t.zoom;
    return options;
  }

  apps::VitRunConfig config_;
  apps::TrainingSplit split_;
  std::string eval_name_;          // "validation" or "test": the set that picks the best checkpoint
  data::ImageDataset eval_set_;
  engine::Generator init_gen_;
  apps::VitModel model_;
  data::ImageLoader loader_;
};

// Linear warm-up from warmup_lr, then cosine to min_lr from step 0 (timm's CosineLRScheduler).
engine::optim::LrScheduleConfig cosine_schedule(const apps::VitTrainSettings& t, int64_t per_epoch,
                                                int64_t total_steps) {
  engine::optim::LrScheduleConfig schedule;
  schedule.decay = engine::optim::LrDecay::cosine;
  schedule.warmup_steps = std::min<int64_t>(int64_t(t.warmup_epochs * double(per_epoch)), total_steps / 2);
  schedule.total_steps = std::max<int64_t>(1, total_steps);
  schedule.warmup_lr_init = t.warmup_lr;
  schedule.min_lr = t.min_lr;
  schedule.warmup_prefix = false;  // timm's CosineLRScheduler default
  return schedule;
}

void train_vit(apps::Job& job, int argc, char** argv) {
  const Arguments args = parse_arguments(argc, argv);
  const apps::VitRunConfig& config = args.config;
  const auto& t = config.train;
  ENGINE_CHECK(t.eval_batch > 0, "run config: train.eval_batch must be positive, got ", t.eval_batch);
  if (t.threads > 0) omp_set_num_threads(t.threads);
  engine::set_flush_denormal(t.flush_denormal);
  const engine::Device device = apps::train::setup_device("train_vit", {t.device, t.tf32, t.precision}, &job.communicator());
  models::set_activation_recompute(models::parse_recompute(t.recompute, "train.recompute"));

  ImageClassification task(config, job);
  const int64_t per_epoch = task.steps_per_epoch();
  ENGINE_CHECK(per_epoch > 0, "an epoch holds fewer than ", t.accumulation, " micro-batches");
  const int64_t total_steps = t.steps > 0 ? t.steps : t.epochs * per_epoch;

  apps::train::TrainerSettings settings;
  settings.out = config.out;
  settings.seed = t.seed;
  settings.steps = total_steps;
  settings.stop_after = t.stop_after;
  settings.accumulation = t.accumulation;
  settings.log_every = t.log_every;
  settings.eval_every = t.eval_every > 0 ? t.eval_every : per_epoch;
  settings.checkpoint_every = t.checkpoint_every;
  settings.keep_checkpoints = t.keep_checkpoints;
  settings.skip_nonfinite = t.skip_nonfinite;
  settings.zero1 = t.zero1;
  settings.allreduce_dtype = apps::train::parse_allreduce_dtype(t.allreduce_dtype, "train.allreduce_dtype");
  settings.higher_is_better = true;
  settings.items_per_step = t.batch;
  settings.item_name = "images";
  settings.metrics_rate_key = "images_per_s";
  settings.device = device;
  apps::train::check_settings(settings, [](const char* field) { return std::string("train.") + field; });

  const bool seqpe = task.model().seqpe != nullptr;
  const seqpe::SeqPeOptions options = seqpe ? apps::seqpe_options(config) : seqpe::SeqPeOptions{};
  std::unique_ptr<apps::train::AuxiliaryObjective> auxiliary;
  if (seqpe)
    auxiliary = std::make_unique<apps::train::SeqPeObjective>(*task.model().seqpe, options,
                                                        t.batch / t.accumulation / job.world_size(),
                                                        job.rank_seed(t.seed), job.rank());
  apps::train::Trainer trainer(
      settings, apps::vit_run_config_to_json(config), job, task.vit(),
      [&](const engine::Module& model) { return parameter_plan(model, t, seqpe, options.clip); },
      cosine_schedule(t, per_epoch, total_steps), task, std::move(auxiliary));
  if (!args.resume.empty()) trainer.resume(args.resume);
  task.describe(total_steps);
  trainer.run();
  std::printf("done: best %s top-1 %.4f\n", config.data.validation > 0 ? "validation" : "test", trainer.best_score());
}

}  // namespace

int main(int argc, char** argv) {
  return apps::run_dist_job("train_vit", [&](apps::Job& job) { train_vit(job, argc, argv); });
}
