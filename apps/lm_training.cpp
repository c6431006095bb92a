#include "apps/lm_training.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>
#include <numeric>

#include "engine/checkpoint.h"
#include "engine/denormals.h"
#include "engine/error.h"
#include "engine/json_read.h"
#include "engine/optim/clip_grad.h"
#include "ops/elementwise.h"

namespace lm {

namespace fs = std::filesystem;
using engine::Tensor;
using nlohmann::json;

namespace {

std::string duration(double seconds) {
  const int s = int(seconds + 0.5);
  char text[32];
  std::snprintf(text, sizeof text, "%dm%02ds", s / 60, s % 60);
  return text;
}

}  // namespace

RunArguments parse_run_arguments(const char* app, int argc, char** argv,
                                 const std::map<std::string, std::string>& flags, const json& defaults,
                                 const std::function<json(const json& config)>& new_run_base) {
  RunArguments args;
  json file = json::object(), overrides = json::object();
  const auto set = [&](const std::string& assignment) {
    auto [key, parsed] = parse_assignment(assignment);
    const bool text = defaults.contains(key) && defaults[key].is_string();
    overrides[key] = text ? json(assignment.substr(key.size() + 1)) : parsed;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    ENGINE_CHECK(i + 1 < argc, app, ": ", flag, " needs a value");
    const std::string value = argv[++i];
    if (flag == "--config") {
      file = engine::read_json_file(value);
      try {
        merge_config(defaults, file);  // checked here so that a field's error names the file
      } catch (const engine::Error& e) {
        throw engine::Error(value + ": " + e.what());
      }
    } else if (flag == "--resume") {
      args.resume = value;
    } else if (flag == "--set") {
      set(value);
    } else {
      auto it = flags.find(flag);
      ENGINE_CHECK(it != flags.end(), app, ": unknown option ", flag);
      set(it->second + "=" + value);
    }
  }
  json base = defaults;
  if (!args.resume.empty()) {
    base = merge_config(base, engine::load_checkpoint(args.resume).extra.at("config"));
  } else if (new_run_base) {
    base = new_run_base(merge_config(merge_config(base, file), overrides));
  }
  args.config = merge_config(merge_config(base, file), overrides);
  return args;
}

TrainingRun::TrainingRun(const json& config, dist_job::Job& job, int64_t vocab_size, BuildModel build)
    : job_(job), config_(config), out_(config.at("out").get<std::string>()), seed_(config.at("seed").get<uint64_t>()),
      init_gen_(seed_), dropout_gen_(job.rank_seed(seed_ + 1)), model_(build(config, vocab_size, init_gen_)),
      optimizer_(engine::optim::weight_decay_groups(model_.gpt->named_parameters(), config.at("lr").get<double>(),
                                                    config.at("weight_decay").get<double>())),
      schedule_({engine::optim::LrDecay::linear, config.at("warmup").get<int64_t>(), config.at("steps").get<int64_t>(),
                 0, 0, true}),
      ddp_(job.communicator(), model_.gpt->parameters()), best_ppl_(std::numeric_limits<double>::infinity()) {
  engine::set_flush_denormal(config.at("flush_denormal").get<bool>());
  for (const auto& [name, param] : model_.gpt->named_parameters())
    (model_.seqpe && name.rfind("pe.", 0) == 0 ? pe_params_ : main_params_).push_back(param);
  if (model_.seqpe) {
    engine::Generator& g = model_.seqpe->dropout_generator();
    g.set_state(job.rank_seed(g.seed()), 0);
  }
}

void TrainingRun::make_samplers(seqpe::SeqPeOptions options) {
  options.main_sampler.blocks_per_shifted_step = std::gcd(options.main_sampler.blocks_per_shifted_step,
                                                          config_.at("batch").get<int64_t>() / job_.world_size());
  main_sampler_ = std::make_unique<seqpe::MainPositionSampler>(options.main_sampler, job_.rank_seed(seed_ + 5));
  contrastive_sampler_ = std::make_unique<seqpe::ContrastiveSampler>(options.contrastive, job_.rank_seed(seed_ + 6));
  transfer_sampler_ = std::make_unique<seqpe::TransferSampler>(options.transfer, job_.rank_seed(seed_ + 7));
}

void TrainingRun::next_seqpe_samples() {
  main_ = main_sampler_->next();
  contrastive_ = contrastive_sampler_->next();
  transfer_ = transfer_sampler_->next();
}

void TrainingRun::resume(const std::string& path, const std::function<void(const json& extra)>& restore_data) {
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
  restore_data(state.extra);
  best_ppl_ = state.extra.at("best_valid_ppl").get<double>();
  // The samplers are deterministic from their seeds: replaying them reaches the saved state.
  if (model_.seqpe)
    for (int64_t i = 0; i < state.step; ++i) next_seqpe_samples();
  std::printf("resumed from %s at step %lld\n", path.c_str(), (long long)state.step);
}

void TrainingRun::run(int64_t tokens_per_step, const std::function<Tensor()>& data_loss,
                      const std::function<void(std::ofstream& metrics)>& validate) {
  const int64_t steps = config_.at("steps").get<int64_t>();
  const int64_t log_every = config_.at("log_every").get<int64_t>(), eval_every = config_.at("eval_every").get<int64_t>();
  std::ofstream metrics;  // left closed (writes nothing) on ranks other than 0
  if (job_.is_main()) {
    fs::create_directories(out_);
    metrics.open(out_ / "metrics.jsonl", std::ios::app);
  }
  const auto start = std::chrono::steady_clock::now();
  const int64_t first = optimizer_.step_count();
  const int64_t stop_after = config_.at("stop_after").get<int64_t>();
  const int64_t end = stop_after > 0 ? std::min(stop_after, steps) : steps;
  while (optimizer_.step_count() < end) {
    const double loss = train_step(data_loss);
    const int64_t step = optimizer_.step_count();
    if (step % log_every == 0 || step == steps) {
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double tokens_per_s = double((step - first) * tokens_per_step) / elapsed;
      const double eta = elapsed / double(step - first) * double(steps - step);
      std::printf("step %5lld/%lld  loss %.4f  lr %.2e  %.0f tok/s  ETA %s\n", (long long)step, (long long)steps, loss,
                  optimizer_.param_groups()[0].lr, tokens_per_s, duration(eta).c_str());
      std::fflush(stdout);
      metrics << json{{"step", step}, {"loss", loss}, {"lr", optimizer_.param_groups()[0].lr},
                      {"tokens_per_s", tokens_per_s}}.dump() << "\n" << std::flush;
    }
    if (job_.is_main() && (step % eval_every == 0 || step == end)) validate(metrics);
  }
}

// One optimizer step; returns the data loss (without SeqPE's auxiliary losses), averaged over the ranks.
double TrainingRun::train_step(const std::function<Tensor()>& data_loss) {
  schedule_.apply(optimizer_);
  optimizer_.zero_grad();
  Tensor aux;
  if (model_.seqpe) {
    next_seqpe_samples();
    const seqpe::StepEncoding step = model_.seqpe->encode_step(main_, &contrastive_, &transfer_);
    aux = model_.seqpe->auxiliary_losses(step, &contrastive_, &transfer_).weighted;
  }
  const Tensor loss = data_loss();
  (aux.defined() ? loss + aux : loss).backward();
  ddp_.reduce_gradients();
  engine::optim::clip_grad_norm(main_params_, config_.at("clip").get<double>());
  if (!pe_params_.empty()) engine::optim::clip_grad_norm(pe_params_, pe_clip_);
  optimizer_.step();
  return job_.average(loss.item());
}

bool TrainingRun::improves(double ppl) {
  if (!(ppl < best_ppl_)) return false;  // NaN never improves
  best_ppl_ = ppl;
  return true;
}

void TrainingRun::save(const std::string& name, const json& data_extra, const json& model_json) {
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
  state.extra = data_extra;
  state.extra["config"] = config_;
  state.extra["best_valid_ppl"] = best_ppl_;
  job_.record_world_size(state.extra);
  engine::save_checkpoint((out_ / (name + ".ckpt.safetensors")).string(), state);
  const fs::path json_path = out_ / (name + ".model.json"), tmp = out_ / (name + ".model.json.tmp");
  std::ofstream(tmp) << model_json.dump(2) << "\n";
  fs::rename(tmp, json_path);
}

}  // namespace lm
