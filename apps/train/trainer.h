// The one training loop of train_lm, finetune_qa and train_vit. A task (language modelling, QA
// fine-tuning, image classification) gives its batches' loss, its validation and its data position;
// an auxiliary objective (SeqPE's) adds its loss; the trainer owns everything else:
//
//   step        schedule -> zero grads -> A micro-batches, each (auxiliary loss + task loss) / A
//               with its own backward -> data-parallel gradient mean (bucketed, overlapped with the
//               last backward) -> clipping per parameter group -> non-finite check -> AdamW
//   ZeRO-1      (zero1) the gradient mean reduce-scattered into optimizer shards, each rank keeping
//               AdamW's state of 1/W of every group; clipping norms summed over the ranks; the
//               updated shards all-gathered. Each rank saves and resumes its own optimizer shard
//               ("<name>.rank<r>.optim.safetensors" beside the checkpoint); same world size only.
//   validation  every eval_every steps and at the end (rank 0): metrics line, "last" checkpoint,
//               and "best" when the task's score improved
//   checkpoints also "step_<N>" every checkpoint_every steps, the newest keep_checkpoints kept;
//               written atomically (apps/train/run_folder.h has the folder's layout)
//   resume      exact: model, optimizer, generators, the auxiliary samplers' draws, the task's data
//               position, the best score; metrics.jsonl is cut back to the resumed step
//   logs        a progress line and a metrics line every log_every steps (step, loss, lr,
//               throughput, ETA)
//   device      the model, optimizer state, batches and losses on settings.device; on GPUs with
//               several ranks the gradients (and ZeRO-1's shards) travel over NCCL
//
// Divergence: a step whose loss or gradient norm is not finite stops the run (an error naming the
// step; the model is not updated and the checkpoints on disk are the last good ones), or, with
// skip_nonfinite, is skipped (its gradients dropped) and logged.
//
// Seeds (with the rank r added where marked): dropout seed + 1 + r; the task's data seed + 2;
// SeqPE's dropout seed + 4 + r and samplers seed + 5, 6, 7 + r (apps/train/seqpe_objective.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/dist_job.h"
#include "apps/train/auxiliary_objective.h"
#include "apps/train/metrics_log.h"
#include "engine/device.h"
#include "engine/dist/data_parallel.h"
#include "engine/dist/zero1.h"
#include "engine/module.h"
#include "engine/optim/adamw.h"
#include "engine/optim/lr_schedule.h"
#include "engine/rng.h"

namespace apps::train {

struct TrainerSettings {
  std::filesystem::path out;
  uint64_t seed = 0;
  int64_t steps = 1;              // the schedule's length
  int64_t stop_after = 0;         // > 0: end after this step as if interrupted (resume continues)
  int64_t accumulation = 1;       // micro-batches per optimizer step
  int64_t log_every = 10;         // > 0
  int64_t eval_every = 100;       // > 0
  int64_t checkpoint_every = 0;   // > 0: also keep "step_<N>" checkpoints
  int64_t keep_checkpoints = 3;   // how many "step_<N>" to keep
  bool skip_nonfinite = false;    // skip a step with a non-finite loss or gradient norm instead of stopping
  bool zero1 = false;             // shard the optimizer state over the ranks (ZeRO stage 1)
  // The gradient all-reduce's dtype: f32, or bf16 (half the bytes; NCCL only, not with zero1).
  engine::Dtype allreduce_dtype = engine::Dtype::f32;
  bool higher_is_better = false;  // the validation score's direction (perplexity: lower; accuracy: higher)
  int64_t items_per_step = 0;     // tokens or images of one global batch (throughput)
  std::string item_name = "tok";  // "tok" -> "tok/s" and "tokens_per_s"
  std::string metrics_rate_key = "tokens_per_s";
  engine::Device device;
};
// "fp32" -> f32, "bf16" -> bf16: the run config's allreduce_dtype (--allreduce-dtype); the error names `field`.
engine::Dtype parse_allreduce_dtype(const std::string& text, const std::string& field);

// Checks the settings' numbers (the errors name the config key `name_of` gives for a field).
void check_settings(const TrainerSettings& settings, const std::function<std::string(const char* field)>& name_of);

// What a validation returns: its metrics fields, its score and a human-readable summary.
struct Validation {
  nlohmann::json metrics;  // e.g. {"valid_ppl": 12.3, "valid_tokens": 1000}
  double score = 0;        // compared by settings.higher_is_better
  std::string summary;     // printed after "valid step N: "
};

class TrainingTask {
 public:
  virtual ~TrainingTask() = default;
  // The loss of this rank's rows of the next micro-batch, by the trainer's model on `device`.
  virtual engine::Tensor next_loss(engine::Device device, engine::Generator& dropout) = 0;
  // Validation of the model (rank 0 only).
  virtual Validation validate() = 0;
  // The data position saved in a checkpoint's extra JSON, and its restoration.
  virtual nlohmann::json data_position() const = 0;
  virtual void restore_data_position(const nlohmann::json& extra) = 0;
  // The JSON written beside each checkpoint as "<name>.model.json" (what evaluation rebuilds from).
  virtual nlohmann::json model_json() const = 0;
};

// The optimizer's parameter groups, taken from the model after it moved to the device, and the
// sets of groups whose gradients are clipped together (each group in one set), each to its own max
// norm: SeqPE's groups apart from the model's.
struct ClipSet {
  std::vector<size_t> groups;  // indices into optimizer_groups
  double max_norm = 0;
};
struct ParameterPlan {
  std::vector<engine::optim::ParamGroup> optimizer_groups;
  std::vector<ClipSet> clip_sets;
};

class Trainer {
 public:
  // Moves `model` to settings.device, checks that every rank holds the same `config` and model
  // (engine/dist/rank_agreement.h; an engine::Error naming the first field that differs), then
  // builds the optimizer from plan(model) and the data-parallel gradient mean (rank 0's parameters
  // broadcast). `config` is the app's run config,
  // saved in checkpoints and run.json.
  Trainer(const TrainerSettings& settings, const nlohmann::json& config, apps::Job& job, engine::Module& model,
          const std::function<ParameterPlan(const engine::Module& model)>& plan,
          const engine::optim::LrScheduleConfig& schedule, TrainingTask& task,
          std::unique_ptr<AuxiliaryObjective> auxiliary = nullptr);

  // Continues from a checkpoint written by a run of the same config and world size.
  void resume(const std::string& path);
  // Runs the steps to stop_after (when > 0) or steps.
  void run();

  int64_t step_count() const { return optimizer_->step_count(); }
  double best_score() const { return best_score_; }  // the best validation score so far
  engine::Generator& dropout_generator() { return dropout_gen_; }

 private:
  // The optimizer (over ZeRO-1's shards when set) for the model's current parameters.
  void build_optimizer();
  double train_step();  // the logged loss (task loss averaged over micro-batches and ranks)
  // Clips each clip set's gradients (ZeRO-1: the shards', norm over every rank) on their device;
  // returns the sets' norms there, unread.
  std::vector<engine::Tensor> clip_gradients();
  void validate();
  void save(const std::string& name);
  void log_step(double loss);

  TrainerSettings settings_;
  nlohmann::json config_;
  apps::Job& job_;
  engine::Module& model_;
  TrainingTask& task_;
  std::unique_ptr<AuxiliaryObjective> auxiliary_;
  engine::Generator dropout_gen_;
  ParameterPlan plan_;
  engine::optim::LrSchedule schedule_;
  // NCCL on GPUs with several ranks (apps/train/device_setup.h), else null: the job's communicator.
  std::unique_ptr<engine::dist::Communicator> nccl_;
  engine::dist::Communicator& reduction_communicator() const { return nccl_ ? *nccl_ : job_.communicator(); }
  std::unique_ptr<engine::dist::DataParallel> ddp_;      // without zero1
  std::unique_ptr<engine::dist::Zero1DataParallel> zero_;  // with zero1
  std::unique_ptr<engine::optim::AdamW> optimizer_;
  MetricsLog metrics_;
  int64_t resumed_step_ = -1;
  double best_score_;
  int64_t skipped_in_a_row_ = 0;
  // Since the last validation: the task loss summed over the steps, for its "train_loss".
  double interval_loss_ = 0;
  int64_t interval_steps_ = 0;
  std::chrono::steady_clock::time_point start_;
  int64_t first_step_ = 0;
};

}  // namespace apps::train
