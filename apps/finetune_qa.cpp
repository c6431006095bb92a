// Fine-tunes a train_lm language model to answer questions from a context (SEQPE_SPEC.md §10,
// scaled down): prompt = context + question (apps/qa_run.h), loss on the answer tokens and
// end-of-text only, AdamW with linear warm-up and decay, the model and SeqPE clipped apart,
// SeqPE's auxiliary losses every step (distillation on random-shift steps too, 160 shifted blocks),
// validation answer-token perplexity picking the best checkpoint, exact resume.
//
// Usage: finetune_qa --init LM_RUN/best.ckpt.safetensors --train FILE --valid FILE
//                    [--config FILE.json] [--set key=value]... [--steps N] [--batch B] [--lr X]
//                    [--seed S] [--out DIR] [--context L] [--resume CHECKPOINT]
// The model and PE keys come from the language model's run config; the training keys and the QA
// keys (apps/qa_run.cpp default_qa_config) from the defaults, --config and the overrides, in that
// order. "stop_after" works as in train_lm. Sequences are left-padded to L with end-of-text (no
// attention mask, as the reference's left padding; positions stay 0..L-1, quirk 13.8); longer
// ones are truncated by qa::truncate_prompt's rule. Writes into --out: best / last
// .ckpt.safetensors with their .model.json (eval_qa reads them), and metrics.jsonl.
// Data parallel: `mpirun -np N finetune_qa ...` fine-tunes on N ranks, "batch" being the global
// batch (apps/dist_job.h has the conventions; rank 0 prints, validates and writes the files).
//
//   B = batch, L = fine-tuning length
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>

#include "apps/dist_job.h"
#include "apps/qa_run.h"
#include "engine/checkpoint.h"
#include "engine/dist/data_parallel.h"
#include "engine/error.h"
#include "engine/optim/adamw.h"
#include "engine/optim/clip_grad.h"
#include "engine/optim/lr_schedule.h"
#include "ops/cross_entropy.h"
#include "ops/elementwise.h"

namespace {

namespace fs = std::filesystem;
using engine::Tensor;
using nlohmann::json;

json read_json(const std::string& path) {
  std::ifstream in(path);
  ENGINE_CHECK(in, "finetune_qa: cannot read ", path);
  return json::parse(in);
}

struct Arguments {
  json config;
  std::string resume;
};

// The run config: defaults, then (new runs) the language model's model keys, the --config file and
// the overrides; a resumed run starts from its checkpoint's config instead of the first two.
Arguments parse_arguments(int argc, char** argv) {
  static const std::map<std::string, std::string> flags = {
      {"--init", "init"}, {"--train", "train_file"}, {"--valid", "valid_file"}, {"--steps", "steps"},
      {"--batch", "batch"}, {"--lr", "lr"}, {"--seed", "seed"}, {"--out", "out"}, {"--context", "qa_context"}};
  const json defaults = qa::default_qa_config();
  Arguments args;
  json file = json::object(), overrides = json::object();
  const auto set = [&](const std::string& assignment) {  // string-valued keys take the text as it is
    auto [key, parsed] = lm::parse_assignment(assignment);
    const bool text = defaults.contains(key) && defaults[key].is_string();
    overrides[key] = text ? json(assignment.substr(key.size() + 1)) : parsed;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    ENGINE_CHECK(i + 1 < argc, "finetune_qa: ", flag, " needs a value");
    const std::string value = argv[++i];
    if (flag == "--config") {
      file = read_json(value);
    } else if (flag == "--resume") {
      args.resume = value;
    } else if (flag == "--set") {
      set(value);
    } else {
      auto it = flags.find(flag);
      ENGINE_CHECK(it != flags.end(), "finetune_qa: unknown option ", flag);
      set(it->second + "=" + value);
    }
  }
  json base = defaults;
  if (!args.resume.empty()) {
    base = lm::merge_config(base, engine::load_checkpoint(args.resume).extra.at("config"));
  } else {
    const std::string init = lm::merge_config(lm::merge_config(base, file), overrides).at("init").get<std::string>();
    ENGINE_CHECK(!init.empty(), "finetune_qa: --init LM_CHECKPOINT is required");
    base = qa::inherit_model_config(base, lm::read_model_json(init).at("config"));
  }
  args.config = lm::merge_config(lm::merge_config(base, file), overrides);
  return args;
}

std::string duration(double seconds) {
  const int s = int(seconds + 0.5);
  char text[32];
  std::snprintf(text, sizeof text, "%dm%02ds", s / 60, s % 60);
  return text;
}

// Model parameters apart from SeqPE's ("pe.*"), and SeqPE's: clipped separately (SPEC §10).
void split_parameters(const models::Gpt& model, std::vector<Tensor>& main, std::vector<Tensor>& pe) {
  for (const auto& [name, param] : model.named_parameters()) (name.rfind("pe.", 0) == 0 ? pe : main).push_back(param);
}

// The fine-tuning length L: "qa_context", or the language model's context when 0.
int64_t qa_length(const json& config) {
  const int64_t L = config.at("qa_context").get<int64_t>();
  const int64_t lm_context = config.at("context").get<int64_t>();
  ENGINE_CHECK(L >= 0, "run config: qa_context must be >= 0, got ", L);
  ENGINE_CHECK(L <= lm_context || config.at("pe").get<std::string>() != "ape", "run config: qa_context ", L,
               " exceeds the ", lm_context, " learned positions of the APE language model");
  return L > 0 ? L : lm_context;
}

class Trainer {
 public:
  Trainer(const json& config, dist_job::Job& job)
      : job_(job), config_(config), out_(config.at("out").get<std::string>()), length_(qa_length(config)),
        lm_json_(lm::read_model_json(config.at("init").get<std::string>())),
        tokenizer_(qa::load_tokenizer(lm_json_)), eot_(*tokenizer_.end_of_text()),
        seed_(config.at("seed").get<uint64_t>()), init_gen_(seed_), dropout_gen_(job.rank_seed(seed_ + 1)),
        model_(qa::build_qa_model(config, tokenizer_.vocab_size(), init_gen_)),
        optimizer_(engine::optim::weight_decay_groups(model_.gpt->named_parameters(), config.at("lr").get<double>(),
                                                      config.at("weight_decay").get<double>())),
        schedule_({engine::optim::LrDecay::linear, config.at("warmup").get<int64_t>(),
                   config.at("steps").get<int64_t>(), 0, 0, true}),
        shard_(job.shard()), ddp_(job.communicator(), model_.gpt->parameters()) {
    ENGINE_CHECK(config.at("batch").get<int64_t>() > 0, "run config: batch must be positive");
    shard_.rows(config.at("batch").get<int64_t>(), "finetune_qa");  // a batch the ranks cannot split fails here
    load_examples();
    split_parameters(*model_.gpt, main_params_, pe_params_);
    if (model_.seqpe) {
      engine::Generator& g = model_.seqpe->dropout_generator();
      g.set_state(job.rank_seed(g.seed()), 0);
      make_samplers();
    }
    if (job.is_main()) fs::create_directories(out_);
  }

  // Starts from the language model's weights (the model and SeqPE, SPEC §10); every rank reads them.
  void initialize() {
    const std::string init = config_.at("init").get<std::string>();
    model_.gpt->load_state_dict(engine::load_checkpoint(init).model);
    std::printf("initialized from %s\n", init.c_str());
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
    epoch_ = state.extra.at("data_epoch").get<int64_t>();
    next_ = state.extra.at("data_index").get<int64_t>();
    build_order();
    best_ppl_ = state.extra.at("best_valid_ppl").get<double>();
    // The samplers are deterministic from their seeds: replaying them reaches the saved state.
    if (model_.seqpe)
      for (int64_t i = 0; i < state.step; ++i) next_seqpe_samples();
    std::printf("resumed from %s at step %lld\n", path.c_str(), (long long)state.step);
  }

  void run() {
    const int64_t steps = config_.at("steps").get<int64_t>(), batch = config_.at("batch").get<int64_t>();
    const int64_t log_every = config_.at("log_every").get<int64_t>();
    const int64_t eval_every = config_.at("eval_every").get<int64_t>();
    std::ofstream metrics;  // left closed (writes nothing) on ranks other than 0
    if (job_.is_main()) metrics.open(out_ / "metrics.jsonl", std::ios::app);
    std::printf("finetune_qa: %zu train / %zu valid examples at length %lld, %lld parameters; pe %s\n", train_.size(),
                valid_.size(), (long long)length_, (long long)model_.gpt->parameter_count(),
                config_.at("pe").get<std::string>().c_str());
    const auto start = std::chrono::steady_clock::now();
    const int64_t first = optimizer_.step_count();
    const int64_t stop_after = config_.at("stop_after").get<int64_t>();
    const int64_t end = stop_after > 0 ? std::min(stop_after, steps) : steps;
    while (optimizer_.step_count() < end) {
      const double loss = train_step();
      const int64_t step = optimizer_.step_count();
      if (step % log_every == 0 || step == steps) {
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const double tokens_per_s = double((step - first) * batch * length_) / elapsed;
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
  void load_examples() {
    const auto load = [&](const char* key, int64_t limit) {
      const std::string path = config_.at(key).get<std::string>();
      ENGINE_CHECK(!path.empty(), "run config: ", key, " is required");
      std::vector<data::QaExample> items = qa::load_qa_file(path);
      if (limit > 0 && int64_t(items.size()) > limit) items.resize(size_t(limit));
      int64_t truncated = 0, dropped = 0;
      std::vector<qa::EncodedExample> examples = qa::encode_examples(items, tokenizer_, length_, truncated, dropped);
      std::printf("%s: %zu questions, %lld truncated to %lld tokens, %lld dropped (answer cut off)\n", path.c_str(),
                  items.size(), (long long)truncated, (long long)length_, (long long)dropped);
      ENGINE_CHECK(!examples.empty(), path, ": no usable question at length ", length_);
      return examples;
    };
    train_ = load("train_file", 0);
    valid_ = load("valid_file", config_.at("valid_examples").get<int64_t>());
    build_order();
  }

  // The shuffled example order of epoch_; depends only on (seed, epoch), as data::BlockBatcher's.
  void build_order() {
    order_.resize(train_.size());
    std::iota(order_.begin(), order_.end(), int64_t(0));
    engine::Generator gen(seed_ * 0x9E3779B97F4A7C15ull + uint64_t(epoch_) + 2);
    for (int64_t i = int64_t(order_.size()) - 1; i > 0; --i)
      std::swap(order_[size_t(i)], order_[gen.randint(uint64_t(i + 1))]);
  }

  void make_samplers() {
    const seqpe::SeqPeOptions options = seqpe::seqpe_options(model_.gpt->config());
    const int64_t max_position = options.pe.pe_max_position;
    ENGINE_CHECK(max_position > length_, "run config: SeqPE's pe_max_position (", max_position,
                 ") must exceed the fine-tuning length (", length_, ")");
    seqpe::MainPositionSamplerConfig main = options.main_sampler;
    main.block_shape = {length_};
    main.shift_downsample = config_.at("seqpe_shift_downsample").get<int64_t>();
    main.blocks_per_shifted_step =
        std::gcd(main.blocks_per_shifted_step, config_.at("batch").get<int64_t>() / job_.world_size());
    const seqpe::ContrastiveSamplerConfig& contrastive = options.contrastive;
    seqpe::TransferSamplerConfig transfer = options.transfer;
    transfer.block_shape = {length_};
    transfer.num_indices = std::min(transfer.num_indices, length_);
    main_sampler_ = std::make_unique<seqpe::MainPositionSampler>(main, job_.rank_seed(seed_ + 5));
    contrastive_sampler_ = std::make_unique<seqpe::ContrastiveSampler>(contrastive, job_.rank_seed(seed_ + 6));
    transfer_sampler_ = std::make_unique<seqpe::TransferSampler>(transfer, job_.rank_seed(seed_ + 7));
  }

  void next_seqpe_samples() {
    main_ = main_sampler_->next();
    contrastive_ = contrastive_sampler_->next();
    transfer_ = transfer_sampler_->next();
  }

  // This rank's rows of the next global batch of B examples (every rank walks the same order) as
  // (B/W, L) inputs and targets, continuing into the next epoch. Returns the number of scored
  // (not ignored) targets.
  int64_t next_batch(Tensor& inputs, Tensor& targets) {
    const int64_t B = config_.at("batch").get<int64_t>(), rows = shard_.rows(B, "finetune_qa");
    const int64_t first = shard_.index * rows;
    std::vector<int64_t> in, tg;
    in.reserve(size_t(rows * length_));
    tg.reserve(size_t(rows * length_));
    for (int64_t b = 0; b < B; ++b) {
      if (next_ == int64_t(order_.size())) {
        ++epoch_;
        next_ = 0;
        build_order();
      }
      const int64_t index = order_[size_t(next_++)];
      if (b < first || b >= first + rows) continue;
      const qa::EncodedExample& example = train_[size_t(index)];
      const qa::QaSequence seq = qa::make_sequence(example.prompt, example.answer, eot_, length_);
      in.insert(in.end(), seq.inputs.begin(), seq.inputs.end());
      tg.insert(tg.end(), seq.targets.begin(), seq.targets.end());
    }
    inputs = Tensor::from_indices(in, {rows, length_});
    targets = Tensor::from_indices(tg, {rows, length_});
    return int64_t(std::count_if(tg.begin(), tg.end(), [](int64_t t) { return t != qa::kIgnore; }));
  }

  // One optimizer step; returns the answer loss over the global batch (without SeqPE's auxiliary
  // losses).
  double train_step() {
    schedule_.apply(optimizer_);
    optimizer_.zero_grad();
    Tensor inputs, targets;
    const int64_t scored = next_batch(inputs, targets);
    Tensor aux;
    if (model_.seqpe) {
      next_seqpe_samples();
      const seqpe::StepEncoding step = model_.seqpe->encode_step(main_, &contrastive_, &transfer_);
      aux = model_.seqpe->auxiliary_losses(step, &contrastive_, &transfer_).weighted;
    }
    // The mean over this rank's scored tokens, whose number differs between ranks (answers differ
    // in length), weighted by scored / (mean scored per rank): the mean over ranks, which DDP takes
    // of the gradients, is then the mean over the global batch's scored tokens, as one process has.
    const double weight = double(scored) / job_.average(double(scored));
    const Tensor loss =
        ops::cross_entropy(model_.gpt->forward(inputs, dropout_gen_), targets, qa::kIgnore) * weight;
    (aux.defined() ? loss + aux : loss).backward();
    ddp_.reduce_gradients();
    const double clip = config_.at("clip").get<double>();
    engine::optim::clip_grad_norm(main_params_, clip);
    if (!pe_params_.empty()) engine::optim::clip_grad_norm(pe_params_, clip);
    optimizer_.step();
    return job_.average(loss.item());
  }

  // Validation answer-token perplexity; saves the last and, when it improved, the best checkpoint.
  void validate(std::ofstream& metrics) {
    const lm::Perplexity ppl = qa::answer_perplexity(*model_.gpt, valid_, eot_);
    const int64_t step = optimizer_.step_count();
    const bool best = ppl.token_ppl() < best_ppl_;
    if (best) best_ppl_ = ppl.token_ppl();
    std::printf("valid step %lld: answer ppl %.3f over %lld tokens of %zu questions%s\n", (long long)step,
                ppl.token_ppl(), (long long)ppl.tokens, valid_.size(), best ? " (best)" : "");
    metrics << json{{"step", step}, {"valid_answer_ppl", ppl.token_ppl()}, {"valid_tokens", ppl.tokens}}.dump()
            << "\n" << std::flush;
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
    state.extra = {{"config", config_}, {"data_epoch", epoch_}, {"data_index", next_}, {"best_valid_ppl", best_ppl_}};
    job_.record_world_size(state.extra);
    engine::save_checkpoint((out_ / (name + ".ckpt.safetensors")).string(), state);
    const json model_json = {{"config", config_}, {"vocab_size", tokenizer_.vocab_size()},
                             {"tokenizer", lm_json_.at("tokenizer")}};
    const fs::path json_path = out_ / (name + ".model.json"), tmp = out_ / (name + ".model.json.tmp");
    std::ofstream(tmp) << model_json.dump(2) << "\n";
    fs::rename(tmp, json_path);
  }

  dist_job::Job& job_;
  json config_;
  fs::path out_;
  int64_t length_;
  json lm_json_;
  data::BpeTokenizer tokenizer_;
  int64_t eot_;
  uint64_t seed_;
  engine::Generator init_gen_, dropout_gen_;
  lm::LanguageModel model_;
  engine::optim::AdamW optimizer_;
  engine::optim::LrSchedule schedule_;
  data::BatchShard shard_;
  engine::dist::DataParallel ddp_;
  std::vector<qa::EncodedExample> train_, valid_;
  std::vector<int64_t> order_;  // example indices of epoch_
  int64_t epoch_ = 0, next_ = 0;
  std::vector<Tensor> main_params_, pe_params_;
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
  return dist_job::run("finetune_qa", [&](dist_job::Job& job) {
    const Arguments args = parse_arguments(argc, argv);
    Trainer trainer(args.config, job);
    if (args.resume.empty()) trainer.initialize();
    else trainer.resume(args.resume);
    trainer.run();
  });
}
