// What train_lm and finetune_qa share whatever their data and loss (docs/method.md#language-modelling, docs/method.md#long-context-question-answering): the
// command line over a flat run config, and how such a config sets up the trainer
// (apps/train/trainer.h): its settings, AdamW over the GPT (weight decay on matrices) with linear
// warm-up then linear decay to 0, the model and SeqPE ("pe.*") clipped apart, SeqPE's auxiliary
// objective, and the device.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/cli_options.h"
#include "apps/dist_job.h"
#include "apps/lm_run.h"
#include "apps/train/trainer.h"
#include "engine/optim/lr_schedule.h"
#include "seqpe/seqpe_options.h"

namespace apps {

// A training app's command line (apps/cli_options.h): --config FILE.json, --resume
// CHECKPOINT|latest, --set key=value, --device cpu|cuda, --tf32 0|1, --precision fp32|bf16 and the
// app's `flags`, each a shorthand for one key of the run config (adding one is a line in the app's
// list), typed by its default (a key whose default is a string takes the text as it is, so that
// --out 2024 names a folder). `description` and `example` are what --help prints first and last.
// The run config is `defaults`, then a resumed run's checkpoint config (a new run's:
// `new_run_base(config)` when given, from the config the command line alone gives), then the
// --config file, then the overrides in command-line order. "--resume latest" resumes the newest
// complete checkpoint of the run's "out" folder.
struct RunArguments {
  nlohmann::json config;
  std::string resume;  // the checkpoint to resume, or empty
};
struct AppHelp {
  const char* name;         // "train_lm"
  const char* description;  // one line: what the app does
  const char* example;      // one complete command
};
RunArguments parse_run_arguments(const AppHelp& app, int argc, char** argv, const std::vector<apps::ConfigFlag>& flags,
                                 const nlohmann::json& defaults,
                                 const std::function<nlohmann::json(const nlohmann::json& config)>& new_run_base = {});

// The trainer's settings from a flat run config (out, seed, steps, stop_after, accumulation,
// log_every, eval_every, checkpoint_every, keep_checkpoints, skip_nonfinite, zero1); validation scores are
// perplexities (lower is better); `tokens_per_step` (global) gives the throughput.
apps::train::TrainerSettings trainer_settings(const nlohmann::json& config, engine::Device device, int64_t tokens_per_step);
// The device the config's "device", "tf32" and "precision" name, readied (apps::train::setup_device):
// on GPUs, this rank's of `job`; and the activation recompute its "recompute" names, set.
engine::Device setup_device(const char* app, const nlohmann::json& config, const apps::Job& job);
// This rank's rows of one micro-batch: batch / (world size x accumulation), refused when it does
// not divide.
int64_t rank_rows(const nlohmann::json& config, const apps::Job& job);

// Linear warm-up ("warmup" steps) then linear decay to 0 at "steps".
engine::optim::LrScheduleConfig linear_schedule(const nlohmann::json& config);
// AdamW groups of weight_decay_groups (lr, weight_decay); the model clipped to "clip" and, for
// SeqPE, its parameters ("pe.*") apart to `pe_clip`.
apps::train::ParameterPlan parameter_plan(const engine::Module& model, const nlohmann::json& config, bool seqpe,
                                    double pe_clip);
// SeqPE's auxiliary objective for `model` (null unless it has SeqPE) with `options`.
std::unique_ptr<apps::train::AuxiliaryObjective> seqpe_objective(const LanguageModel& model,
                                                           const seqpe::SeqPeOptions& options,
                                                           const nlohmann::json& config, const apps::Job& job);

}  // namespace apps
