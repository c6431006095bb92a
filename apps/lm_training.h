// What train_lm and finetune_qa share whatever their data and loss (SEQPE_SPEC.md §9, §10): the
// command line, the model with AdamW (linear warm-up then linear decay to 0), the model and
// SeqPE ("pe.*") clipped apart, SeqPE's samplers and auxiliary losses every step, data-parallel
// gradients, the step loop with its progress lines and metrics, and checkpoints (best / last,
// exact resume with the generators' states and the world size).
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/dist_job.h"
#include "apps/lm_run.h"
#include "engine/dist/data_parallel.h"
#include "engine/optim/adamw.h"
#include "engine/optim/lr_schedule.h"
#include "seqpe/seqpe_options.h"

namespace lm {

// A training app's command line: --config FILE.json, --resume CHECKPOINT, --set key=value and the
// app's `flags` (each a shorthand for --set key=value). Keys whose value in `defaults` is a string
// take the text as it is (so that --out 2024 names a folder). Errors start with `app`.
// The run config is `defaults`, then a resumed run's checkpoint config (a new run's:
// `new_run_base(config)` when given, from the config the command line alone gives), then the
// --config file, then the overrides.
struct RunArguments {
  nlohmann::json config;
  std::string resume;  // the checkpoint to resume, or empty
};
RunArguments parse_run_arguments(const char* app, int argc, char** argv,
                                 const std::map<std::string, std::string>& flags, const nlohmann::json& defaults,
                                 const std::function<nlohmann::json(const nlohmann::json& config)>& new_run_base = {});

// The app-independent state of a training run and its step loop. The run config's keys used here:
// out, seed, lr, weight_decay, warmup, steps, batch, clip, stop_after, log_every, eval_every,
// flush_denormal (set for the whole process when the run is built).
// Generators: "init" (seed), "dropout" (rank seed + 1), SeqPE's dropout (its own seed + rank) and
// samplers (rank seeds + 5, 6, 7); the app's data may use seed + 2.
class TrainingRun {
 public:
  using BuildModel = LanguageModel (*)(const nlohmann::json& run, int64_t vocab_size, engine::Generator& init_gen);
  TrainingRun(const nlohmann::json& config, dist_job::Job& job, int64_t vocab_size, BuildModel build);

  const nlohmann::json& config() const { return config_; }
  dist_job::Job& job() const { return job_; }
  models::Gpt& gpt() const { return *model_.gpt; }
  const LanguageModel& model() const { return model_; }
  engine::Generator& dropout_generator() { return dropout_gen_; }
  int64_t step_count() const { return optimizer_.step_count(); }

  // SeqPE's samplers (model().seqpe set) as `options` describe them, P cut to a divisor of this
  // rank's rows, which must tile over the P blocks.
  void make_samplers(seqpe::SeqPeOptions options);
  // The gradient norm that SeqPE's parameters are clipped to (the rest: "clip"); 0 until set.
  void set_pe_clip(double max_norm) { pe_clip_ = max_norm; }

  // Loads a checkpoint saved by save(): the model, the optimizer, the generators and the best
  // validation perplexity; `restore_data` gets its extra JSON to restore the app's data position.
  void resume(const std::string& path, const std::function<void(const nlohmann::json& extra)>& restore_data);

  // Runs the steps up to "stop_after" (when > 0) or "steps", printing and logging the loss every
  // "log_every" steps and calling `validate` (rank 0) every "eval_every" steps and at the end.
  // `data_loss` returns this step's loss on this rank's rows, whose average over the ranks is
  // logged; `tokens_per_step` (global) gives the throughput.
  void run(int64_t tokens_per_step, const std::function<engine::Tensor()>& data_loss,
           const std::function<void(std::ofstream& metrics)>& validate);

  // Records a validation perplexity; true when it is the best so far.
  bool improves(double ppl);
  // Writes "<out>/<name>.ckpt.safetensors" (extra: the run config, the best validation perplexity,
  // the world size and `data_extra`, the app's data position) and "<out>/<name>.model.json".
  void save(const std::string& name, const nlohmann::json& data_extra, const nlohmann::json& model_json);

 private:
  void next_seqpe_samples();
  double train_step(const std::function<engine::Tensor()>& data_loss);

  dist_job::Job& job_;
  nlohmann::json config_;
  std::filesystem::path out_;
  uint64_t seed_;
  engine::Generator init_gen_, dropout_gen_;
  LanguageModel model_;
  engine::optim::AdamW optimizer_;
  engine::optim::LrSchedule schedule_;
  engine::dist::DataParallel ddp_;
  std::vector<engine::Tensor> main_params_, pe_params_;
  double pe_clip_ = 0;
  std::unique_ptr<seqpe::MainPositionSampler> main_sampler_;
  std::unique_ptr<seqpe::ContrastiveSampler> contrastive_sampler_;
  std::unique_ptr<seqpe::TransferSampler> transfer_sampler_;
  seqpe::MainPositions main_;
  seqpe::ContrastiveBatch contrastive_;
  seqpe::TransferBatch transfer_;
  double best_ppl_;
};

}  // namespace lm
