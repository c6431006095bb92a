// Trains a GPT language model on a text corpus with any position encoding (SEQPE_SPEC.md §9, scaled
// down): AdamW, linear warm-up then linear decay to 0, gradient clipping of the model and of SeqPE
// apart, SeqPE's auxiliary losses every step, periodic validation perplexity at the training
// length, the best checkpoint kept, exact resume.
//
// Usage: train_lm [--config FILE.json] [--set key=value]... [--pe ape|sin|rope|alibi|nope|seqpe]
//                 [--steps N] [--batch B] [--lr X] [--seed S] [--out DIR] [--corpus DIR]
//                 [--context T] [--resume CHECKPOINT]
// "stop_after" (--set stop_after=N) ends the run after step N as if interrupted there: the schedule
// still spans "steps", and --resume RUN/last.ckpt.safetensors --set stop_after=0 continues it.
// Keys and defaults: apps/lm_run.cpp default_run_config(). Writes into --out:
//   best.ckpt.safetensors  the checkpoint with the lowest validation perplexity (+ best.model.json)
//   last.ckpt.safetensors  the latest checkpoint, for --resume (+ last.model.json)
//   metrics.jsonl          one JSON object per logged step and per validation
// A checkpoint's model.json holds the run config and vocabulary size that eval_lm rebuilds from,
// and the model config ("model", SeqPE's options written out in full).
// Data parallel: `mpirun -np N train_lm ...` trains on N ranks, "batch" being the global batch
// (apps/dist_job.h has the conventions; rank 0 prints and writes the files).
//
//   B = batch, T = context
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>

#include "apps/dist_job.h"
#include "apps/lm_run.h"
#include "data/text_corpus.h"
#include "engine/checkpoint.h"
#include "engine/dist/data_parallel.h"
#include "engine/error.h"
#include "engine/optim/adamw.h"
#include "engine/optim/clip_grad.h"
#include "engine/optim/lr_schedule.h"
#include "models/model_config.h"
#include "ops/cross_entropy.h"
#include "ops/elementwise.h"
#include "seqpe/seqpe_options.h"

namespace {

namespace fs = std::filesystem;
using engine::Tensor;
using nlohmann::json;

struct Arguments {
  json config;
  std::string resume;
};

json read_json(const std::string& path) {
  std::ifstream in(path);
  ENGINE_CHECK(in, "train_lm: cannot read ", path);
  return json::parse(in);
}

// Applies "key=value" to `overrides`; a key whose default is a string takes the text as it is
// (so that --out 2024 names a folder).
void set_override(json& overrides, const std::string& assignment) {
  auto [key, parsed] = lm::parse_assignment(assignment);
  const json defaults = lm::default_run_config();
  const bool text = defaults.contains(key) && defaults[key].is_string();
  overrides[key] = text ? json(assignment.substr(key.size() + 1)) : parsed;
}

// The run config from the defaults, the --config file and the overrides, in that order.
Arguments parse_arguments(int argc, char** argv) {
  static const std::map<std::string, std::string> flags = {
      {"--pe", "pe"}, {"--steps", "steps"}, {"--batch", "batch"}, {"--lr", "lr"}, {"--seed", "seed"},
      {"--out", "out"}, {"--corpus", "corpus"}, {"--context", "context"}};
  Arguments args;
  json file = json::object(), overrides = json::object();
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    ENGINE_CHECK(i + 1 < argc, "train_lm: ", flag, " needs a value");
    const std::string value = argv[++i];
    if (flag == "--config") {
      file = read_json(value);
    } else if (flag == "--resume") {
      args.resume = value;
    } else if (flag == "--set") {
      set_override(overrides, value);
    } else {
      auto it = flags.find(flag);
      ENGINE_CHECK(it != flags.end(), "train_lm: unknown option ", flag);
      set_override(overrides, it->second + "=" + value);
    }
  }
  json base = lm::default_run_config();
  if (!args.resume.empty()) base = lm::merge_config(base, engine::load_checkpoint(args.resume).extra.at("config"));
  args.config = lm::merge_config(lm::merge_config(base, file), overrides);
  return args;
}

std::string duration(double seconds) {
  const int s = int(seconds + 0.5);
  char text[32];
  std::snprintf(text, sizeof text, "%dm%02ds", s / 60, s % 60);
  return text;
}

// Model parameters apart from SeqPE's ("pe.*"), and SeqPE's: clipped separately (SPEC §9).
void split_parameters(const models::Gpt& model, std::vector<Tensor>& main, std::vector<Tensor>& pe) {
  for (const auto& [name, param] : model.named_parameters()) (name.rfind("pe.", 0) == 0 ? pe : main).push_back(param);
}

class Trainer {
 public:
  Trainer(const json& config, dist_job::Job& job)
      : job_(job), config_(config), out_(config.at("out").get<std::string>()),
        corpus_(config.at("corpus").get<std::string>(), config.at("vocab_size").get<int64_t>()),
        seed_(config.at("seed").get<uint64_t>()), init_gen_(seed_), dropout_gen_(job.rank_seed(seed_ + 1)),
        model_(lm::build_model(config, corpus_.tokenizer().vocab_size(), init_gen_)),
        optimizer_(engine::optim::weight_decay_groups(model_.gpt->named_parameters(), config.at("lr").get<double>(),
                                                      config.at("weight_decay").get<double>())),
        schedule_({engine::optim::LrDecay::linear, config.at("warmup").get<int64_t>(),
                   config.at("steps").get<int64_t>(), 0, 0, true}),
        batcher_(corpus_.split("train"), context(), config.at("batch").get<int64_t>(), seed_ + 2, job.shard()),
        ddp_(job.communicator(), model_.gpt->parameters()) {
    split_parameters(*model_.gpt, main_params_, pe_params_);
    if (model_.seqpe) {
      engine::Generator& g = model_.seqpe->dropout_generator();
      g.set_state(job.rank_seed(g.seed()), 0);
      make_samplers();
    }
    if (job.is_main()) fs::create_directories(out_);
  }

  void resume(const std::string& path) {
    const engine::TrainingState state = engine::load_checkpoint(path);
    job_.check_resume(state.extra);
    model_.gpt->load_state_dict(state.model);
    optimizer_.load_state_dict(state.optimizer);
    const auto& gens = state.generators;
    // Rank 0's generators were saved: every rank has drawn as many, from its own seed.
    dropout_gen_.set_state(dropout_gen_.seed(), gens.at("dropout").second);
    if (model_.seqpe) {
      engine::Generator& g = model_.seqpe->dropout_generator();
      g.set_state(g.seed(), gens.at("seqpe_dropout").second);
    }
    batcher_.set_position({state.extra.at("data_epoch").get<int64_t>(), state.extra.at("data_block").get<int64_t>()});
    best_ppl_ = state.extra.at("best_valid_ppl").get<double>();
    // The samplers are deterministic from their seeds: replaying them reaches the saved state.
    if (model_.seqpe)
      for (int64_t i = 0; i < state.step; ++i) next_seqpe_samples();
    std::printf("resumed from %s at step %lld\n", path.c_str(), (long long)state.step);
  }

  void run() {
    const int64_t steps = config_.at("steps").get<int64_t>(), batch = config_.at("batch").get<int64_t>();
    const int64_t log_every = config_.at("log_every").get<int64_t>(), eval_every = config_.at("eval_every").get<int64_t>();
    std::ofstream metrics;  // left closed (writes nothing) on ranks other than 0
    if (job_.is_main()) metrics.open(out_ / "metrics.jsonl", std::ios::app);
    std::printf("train_lm: %s, vocab %lld, %lld train tokens, %lld parameters; pe %s\n", corpus_.cache_dir().c_str(),
                (long long)corpus_.tokenizer().vocab_size(), (long long)corpus_.split("train").size(),
                (long long)model_.gpt->parameter_count(), config_.at("pe").get<std::string>().c_str());
    const auto start = std::chrono::steady_clock::now();
    const int64_t first = optimizer_.step_count();
    const int64_t stop_after = config_.at("stop_after").get<int64_t>();
    const int64_t end = stop_after > 0 ? std::min(stop_after, steps) : steps;
    while (optimizer_.step_count() < end) {
      const double loss = train_step();
      const int64_t step = optimizer_.step_count();
      if (step % log_every == 0 || step == steps) {
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const double tokens_per_s = double((step - first) * batch * context()) / elapsed;
        const double eta = elapsed / double(step - first) * double(steps - step);
        std::printf("step %5lld/%lld  loss %.4f  lr %.2e  %.0f tok/s  ETA %s\n", (long long)step, (long long)steps,
                    loss, optimizer_.param_groups()[0].lr, tokens_per_s, duration(eta).c_str());
        std::fflush(stdout);
        metrics << json{{"step", step}, {"loss", loss}, {"lr", optimizer_.param_groups()[0].lr},
                        {"tokens_per_s", tokens_per_s}}.dump() << "\n" << std::flush;
      }
      if (job_.is_main() && (step % eval_every == 0 || step == end)) validate(metrics);
    }
  }

 private:
  int64_t context() const { return config_.at("context").get<int64_t>(); }

  // The samplers as the model config's SeqPE options describe them; P is cut to a divisor of the
  // batch, which must tile over the P blocks.
  void make_samplers() {
    seqpe::SeqPeOptions options = seqpe::seqpe_options(model_.gpt->config());
    options.main_sampler.blocks_per_shifted_step = std::gcd(options.main_sampler.blocks_per_shifted_step,
                                                            config_.at("batch").get<int64_t>() / job_.world_size());
    seqpe_clip_ = options.clip;
    main_sampler_ = std::make_unique<seqpe::MainPositionSampler>(options.main_sampler, job_.rank_seed(seed_ + 5));
    contrastive_sampler_ = std::make_unique<seqpe::ContrastiveSampler>(options.contrastive, job_.rank_seed(seed_ + 6));
    transfer_sampler_ = std::make_unique<seqpe::TransferSampler>(options.transfer, job_.rank_seed(seed_ + 7));
  }

  void next_seqpe_samples() {
    main_ = main_sampler_->next();
    contrastive_ = contrastive_sampler_->next();
    transfer_ = transfer_sampler_->next();
  }

  // One optimizer step; returns the language-model loss (without SeqPE's auxiliary losses), averaged
  // over the ranks.
  double train_step() {
    schedule_.apply(optimizer_);
    optimizer_.zero_grad();
    const data::TokenBatch batch = batcher_.next();
    Tensor aux;
    if (model_.seqpe) {
      next_seqpe_samples();
      const seqpe::StepEncoding step = model_.seqpe->encode_step(main_, &contrastive_, &transfer_);
      aux = model_.seqpe->auxiliary_losses(step, &contrastive_, &transfer_).weighted;
    }
    const Tensor loss = ops::cross_entropy(model_.gpt->forward(batch.inputs, dropout_gen_), batch.targets);
    (aux.defined() ? loss + aux : loss).backward();
    ddp_.reduce_gradients();
    const double clip = config_.at("clip").get<double>();
    engine::optim::clip_grad_norm(main_params_, clip);
    if (!pe_params_.empty()) engine::optim::clip_grad_norm(pe_params_, seqpe_clip_);
    optimizer_.step();
    return job_.average(loss.item());
  }

  // Validation perplexity at the training length; saves the last and, when it improved, the best checkpoint.
  void validate(std::ofstream& metrics) {
    const lm::Perplexity ppl = lm::token_perplexity(*model_.gpt, corpus_.split("valid"), context(),
                                                    config_.at("valid_tokens").get<int64_t>());
    const int64_t step = optimizer_.step_count();
    const bool best = ppl.token_ppl() < best_ppl_;
    if (best) best_ppl_ = ppl.token_ppl();
    std::printf("valid step %lld: token ppl %.3f at length %lld over %lld tokens%s\n", (long long)step,
                ppl.token_ppl(), (long long)context(), (long long)ppl.tokens, best ? " (best)" : "");
    metrics << json{{"step", step}, {"valid_ppl", ppl.token_ppl()}, {"valid_tokens", ppl.tokens}}.dump() << "\n"
            << std::flush;
    save("last");
    if (best) save("best");
  }

  void save(const std::string& name) {
    engine::TrainingState state;
    state.model = model_.gpt->state_dict();
    state.optimizer = optimizer_.state_dict();
    state.step = optimizer_.step_count();
    state.generators = {{"init", {init_gen_.seed(), init_gen_.offset()}},
                        {"dropout", {dropout_gen_.seed(), dropout_gen_.offset()}}};
    if (model_.seqpe) {
      const auto& g = model_.seqpe->dropout_generator();
      state.generators["seqpe_dropout"] = {g.seed(), g.offset()};
    }
    const json model_json = {{"config", config_}, {"model", models::gpt_config_to_json(model_.gpt->config())},
                             {"vocab_size", corpus_.tokenizer().vocab_size()},
                             {"tokenizer", corpus_.cache_dir().string()}};
    state.extra = {{"config", config_}, {"data_epoch", batcher_.position().epoch},
                   {"data_block", batcher_.position().block}, {"best_valid_ppl", best_ppl_}};
    job_.record_world_size(state.extra);
    engine::save_checkpoint((out_ / (name + ".ckpt.safetensors")).string(), state);
    const fs::path json_path = out_ / (name + ".model.json"), tmp = out_ / (name + ".model.json.tmp");
    std::ofstream(tmp) << model_json.dump(2) << "\n";
    fs::rename(tmp, json_path);
  }

  dist_job::Job& job_;
  json config_;
  fs::path out_;
  data::TextCorpus corpus_;
  uint64_t seed_;
  engine::Generator init_gen_, dropout_gen_;
  lm::LanguageModel model_;
  engine::optim::AdamW optimizer_;
  engine::optim::LrSchedule schedule_;
  data::BlockBatcher batcher_;
  engine::dist::DataParallel ddp_;
  std::vector<Tensor> main_params_, pe_params_;
  double seqpe_clip_ = 0;
  std::unique_ptr<seqpe::MainPositionSampler> main_sampler_;
  std::unique_ptr<seqpe::ContrastiveSampler> contrastive_sampler_;
  std::unique_ptr<seqpe::TransferSampler> transfer_sampler_;
  seqpe::MainPositions main_;
  seqpe::ContrastiveBatch contrastive_;
  seqpe::TransferBatch transfer_;
  double best_ppl_ = std::numeric_limits<double>::infinity();
};

}  // namespace

int main(int argc, char** argv) {
  return dist_job::run("train_lm", [&](dist_job::Job& job) {
    const Arguments args = parse_arguments(argc, argv);
    // Rank 0 trains and caches the tokenizer and token files before the others open them.
    job.prepare_on_main([&] {
      data::TextCorpus(args.config.at("corpus").get<std::string>(), args.config.at("vocab_size").get<int64_t>());
    });
    Trainer trainer(args.config, job);
    if (!args.resume.empty()) trainer.resume(args.resume);
    trainer.run();
  });
}
