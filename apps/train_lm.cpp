// Trains a GPT language model on a text corpus with any position encoding (docs/method.md#language-modelling, scaled
// down): AdamW, linear warm-up then linear decay to 0, gradient clipping of the model and of SeqPE
// apart, SeqPE's auxiliary losses every step, periodic validation perplexity at the training
// length, the best checkpoint kept, exact resume. The loop is the trainer's (apps/train/trainer.h);
// this file is the language-modelling task: the corpus's batches, their loss and the validation.
//
// Usage: train_lm [--config FILE.json] [--set key=value]... [--pe ape|sin|rope|alibi|nope|seqpe]
//                 [--steps N] [--batch B] [--lr X] [--seed S] [--out DIR] [--corpus DIR]
//                 [--context T] [--device cpu|cuda] [--tf32 0|1] [--precision fp32|bf16]
//                 [--recompute none|gelu|block] [--resume CHECKPOINT|latest]
// "copy_mix" (--set copy_mix=X) rewrites a share X of the training blocks into synthetic copying
// sequences (data/copy_tasks.h: repeated spans and key-value lookups, or the tasks that "copy_tasks"
// lists, e.g. --set copy_tasks=random_repeats), a deviation from the paper.
// "stop_after" (--set stop_after=N) ends the run after step N as if interrupted there: the schedule
// still spans "steps", and --resume latest --out RUN --set stop_after=0 continues it.
// Keys and defaults: apps/lm_run.cpp default_run_config(). Writes into --out (apps/train/run_folder.h):
//   best.ckpt.safetensors  the checkpoint with the lowest validation perplexity (+ best.model.json)
//   last.ckpt.safetensors  the latest checkpoint, for --resume (+ last.model.json)
//   step_<N>.ckpt.safetensors  every checkpoint_every steps (0: none), the keep_checkpoints newest
//   run.json, metrics.jsonl  the run config; one JSON object per logged step and per validation
// A checkpoint's model.json holds the run config and vocabulary size that eval_lm rebuilds from,
// and the model config ("model", SeqPE's options written out in full).
// Data parallel: `mpirun -np N train_lm ...` trains on N ranks, "batch" being the global batch
// (apps/dist_job.h has the conventions; rank 0 prints and writes the files).
//
//   B = batch, T = context
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "apps/dist_job.h"
#include "apps/lm_run.h"
#include "apps/lm_training.h"
#include "data/copy_tasks.h"
#include "data/text_corpus.h"
#include "engine/denormals.h"
#include "engine/error.h"
#include "models/model_config.h"
#include "seqpe/position_signal.h"
#include "seqpe/seqpe_options.h"

namespace {

using nlohmann::json;

// The run config from the defaults, the --config file and the overrides, in that order.
apps::RunArguments parse_arguments(int argc, char** argv) {
  static const std::vector<apps::ConfigFlag> flags = {
      {"--pe", "/pe", "position encoding: ape, sin, rope, alibi, nope or seqpe"},
      {"--steps", "/steps", "optimizer steps (the schedule spans them)"},
      {"--batch", "/batch", "sequences per step (global: over every rank)"},
      {"--lr", "/lr", "peak learning rate"},
      {"--seed", "/seed", "seed of the initialisation, data order and dropout"},
      {"--out", "/out", "run folder: checkpoints, run.json, metrics.jsonl"},
      {"--corpus", "/corpus", "corpus folder (train.txt, valid.txt, test.txt; tokenizer cached there)"},
      {"--context", "/context", "training length T"}};
  return apps::parse_run_arguments(
      {"train_lm", "Trains a GPT language model on a text corpus with any position encoding.",
       "train_lm --corpus data/corpora/kjv --pe seqpe --steps 300 --out runs/lm/seqpe --set layers=2"},
      argc, argv, flags, apps::default_run_config());
}

// Next-token prediction on the corpus's training split; validation perplexity at the training length.
class LanguageModelling : public apps::train::TrainingTask {
 public:
  LanguageModelling(const json& config, apps::Job& job)
      : config_(config), corpus_(config.at("corpus").get<std::string>(), config.at("vocab_size").get<int64_t>()),
        batcher_(corpus_.split("train"), context(), apps::rank_rows(config, job) * job.world_size(),
                 config.at("seed").get<uint64_t>() + 2, job.shard()),
        init_gen_(config.at("seed").get<uint64_t>()),
        model_(apps::build_model(config, corpus_.tokenizer().vocab_size(), init_gen_)) {
    // Refused before the first step: validation would otherwise fail (or score a fragment) only at
    // the first evaluation, after eval_every steps of training.
    const data::TokenFile& valid = corpus_.split("valid");
    ENGINE_CHECK(valid.size() > context(), "corpus ", config.at("corpus").get<std::string>(), ": the valid split (",
                 valid.path().string(), ") holds ", valid.size(), " tokens, fewer than one validation sequence of ",
                 context() + 1, " (the context ", context(), " plus its last target): lengthen valid.txt");
    const double copy_mix = config.at("copy_mix").get<double>();
    const std::vector<data::CopyTask> copy_tasks =
        data::parse_copy_tasks(config.at("copy_tasks").get<std::string>(), "copy_tasks");
    if (copy_mix > 0)
      batcher_.mix_copy_tasks(data::CopyMixer(copy_mix, config.at("seed").get<uint64_t>() + 5, copy_tasks));
  }

  models::Gpt& gpt() { return *model_.gpt; }
  const apps::LanguageModel& model() const { return model_; }

  void describe() const {
    std::printf("train_lm: %s, vocab %lld, %lld train tokens, %lld parameters; pe %s; copy_mix %g (%s)\n",
                corpus_.cache_dir().c_str(), (long long)corpus_.tokenizer().vocab_size(),
                (long long)corpus_.split("train").size(), (long long)model_.gpt->parameter_count(),
                config_.at("pe").get<std::string>().c_str(), config_.at("copy_mix").get<double>(),
                config_.at("copy_tasks").get<std::string>().c_str());
  }

  engine::Tensor next_loss(engine::Device device, engine::Generator& dropout) override {
    const data::TokenBatch batch = batcher_.next();
    return model_.gpt->loss(batch.inputs.to(device), batch.targets.to(device), dropout);
  }

  apps::train::Validation validate() override {
    const apps::Perplexity ppl = apps::token_perplexity(*model_.gpt, corpus_.split("valid"), context(),
                                                    config_.at("valid_tokens").get<int64_t>());
    char summary[128];
    std::snprintf(summary, sizeof summary, "token ppl %.3f at length %lld over %lld tokens", ppl.token_ppl(),
                  (long long)context(), (long long)ppl.tokens);
    json fields = {{"valid_ppl", ppl.token_ppl()}, {"valid_tokens", ppl.tokens}};
    if (model_.seqpe) fields["position_signal"] = position_signal();
    return {fields, ppl.token_ppl(), summary};
  }

  json data_position() const override {
    return {{"data_epoch", batcher_.position().epoch}, {"data_block", batcher_.position().block}};
  }
  void restore_data_position(const json& extra) override {
    batcher_.set_position({extra.at("data_epoch").get<int64_t>(), extra.at("data_block").get<int64_t>()});
  }

  json model_json() const override {
    return {{"config", config_}, {"model", models::gpt_config_to_json(model_.gpt->config())},
            {"vocab_size", corpus_.tokenizer().vocab_size()}, {"tokenizer", corpus_.cache_dir().string()}};
  }

 private:
  int64_t context() const { return config_.at("context").get<int64_t>(); }

  // SeqPE's position term against the content's (seqpe/position_signal.h), on the first (up to 4)
  // validation sequences; null when the model has no such term.
  json position_signal() {
    const data::TokenFile& valid = corpus_.split("valid");
    const int64_t rows = std::min<int64_t>(4, valid.size() / context());
    if (rows == 0) return nullptr;
    std::vector<int64_t> first(size_t(rows * context()));
    valid.read(0, first);
    const engine::Tensor tokens = engine::Tensor::from_indices(first, {rows, context()});
    const engine::Device device = model_.gpt->parameters().front().device();
    return seqpe::position_signal_metrics(*model_.gpt, *model_.seqpe, tokens.to(device));
  }

  json config_;
  data::TextCorpus corpus_;
  data::BlockBatcher batcher_;
  engine::Generator init_gen_;
  apps::LanguageModel model_;
};

}  // namespace

int main(int argc, char** argv) {
  return apps::run_dist_job("train_lm", [&](apps::Job& job) {
    const apps::RunArguments args = parse_arguments(argc, argv);
    const json& config = args.config;
    engine::set_flush_denormal(config.at("flush_denormal").get<bool>());
    const engine::Device device = apps::setup_device("train_lm", config, job);
    // Rank 0 trains and caches the tokenizer and token files before the others open them.
    job.prepare_on_main([&] {
      data::TextCorpus(config.at("corpus").get<std::string>(), config.at("vocab_size").get<int64_t>());
    });
    LanguageModelling task(config, job);
    const bool seqpe = task.model().seqpe != nullptr;
    const seqpe::SeqPeOptions options = seqpe ? seqpe::seqpe_options(task.gpt().config()) : seqpe::SeqPeOptions{};
    const int64_t tokens_per_step = config.at("batch").get<int64_t>() * config.at("context").get<int64_t>();
    apps::train::Trainer trainer(
        apps::trainer_settings(config, device, tokens_per_step), config, job, task.gpt(),
        [&](const engine::Module& model) { return apps::parameter_plan(model, config, seqpe, options.clip); },
        apps::linear_schedule(config), task, apps::seqpe_objective(task.model(), options, config, job));
    if (!args.resume.empty()) trainer.resume(args.resume);
    task.describe();
    trainer.run();
  });
}
