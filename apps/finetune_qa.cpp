// Fine-tunes a train_lm language model to answer questions from a context (docs/method.md#long-context-question-answering,
// scaled down): prompt = context + question (apps/qa_run.h), loss on the answer tokens and
// end-of-text only, AdamW with linear warm-up and decay, the model and SeqPE clipped apart,
// SeqPE's auxiliary losses every step (distillation on random-shift steps too, 160 shifted blocks),
// validation answer-token perplexity picking the best checkpoint, exact resume.
//
// Usage: finetune_qa --init LM_RUN/best.ckpt.safetensors --train FILE --valid FILE
//                    [--config FILE.json] [--set key=value]... [--steps N] [--batch B] [--lr X]
//                    [--seed S] [--out DIR] [--context L] [--device cpu|cuda] [--tf32 0|1] [--precision fp32|bf16]
//                    [--resume CHECKPOINT|latest]
// The model and PE keys come from the language model's run config; the training keys and the QA
// keys (apps/qa_run.cpp default_qa_config) from the defaults, --config and the overrides, in that
// order. "stop_after" works as in train_lm. Sequences are left-padded to L with end-of-text (no
// attention mask, as the reference's left padding; positions stay 0..L-1, docs/method.md#quirks (quirk 8)); longer
// ones are truncated by apps::truncate_prompt's rule. The loop is the trainer's (apps/train/trainer.h);
// this file is the fine-tuning task. Writes into --out (apps/train/run_folder.h): best / last
// .ckpt.safetensors with their .model.json (eval_qa reads them), run.json and metrics.jsonl.
// Data parallel: `mpirun -np N finetune_qa ...` fine-tunes on N ranks, "batch" being the global
// batch (apps/dist_job.h has the conventions; rank 0 prints, validates and writes the files).
//
//   B = batch, L = fine-tuning length
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <numeric>

#include "apps/dist_job.h"
#include "apps/lm_training.h"
#include "apps/qa_run.h"
#include "engine/checkpoint.h"
#include "engine/denormals.h"
#include "engine/error.h"
#include "ops/elementwise.h"

namespace {

using engine::Tensor;
using nlohmann::json;

// The run config: defaults, then (new runs) the language model's model keys, the --config file and
// the overrides; a resumed run starts from its checkpoint's config instead of the first two.
apps::RunArguments parse_arguments(int argc, char** argv) {
  static const std::vector<apps::ConfigFlag> flags = {
      {"--init", "/init", "the language model to fine-tune: a train_lm checkpoint (required for a new run)"},
      {"--train", "/train_file", "QA training examples (build_qa's train.<L>.json)"},
      {"--valid", "/valid_file", "QA validation examples (build_qa's dev.<L>.json)"},
      {"--steps", "/steps", "optimizer steps (the schedule spans them)"},
      {"--batch", "/batch", "examples per step (global: over every rank)"},
      {"--lr", "/lr", "peak learning rate"},
      {"--seed", "/seed", "seed of the data order and dropout"},
      {"--out", "/out", "run folder: checkpoints, run.json, metrics.jsonl"},
      {"--context", "/qa_context", "fine-tuning length L (0: the language model's context)"}};
  const json defaults = apps::default_qa_config();
  return apps::parse_run_arguments(
      {"finetune_qa", "Fine-tunes a train_lm language model to answer questions from a long context.",
       "finetune_qa --init runs/lm/seqpe/best.ckpt.safetensors --train data/qa/train.128.json "
       "--valid data/qa/dev.128.json --steps 200 --out runs/qa/seqpe"},
      argc, argv, flags, defaults, [&](const json& config) {
        const std::string init = config.at("init").get<std::string>();
        ENGINE_CHECK(!init.empty(), "--init LM_CHECKPOINT is required");
        return apps::inherit_model_config(defaults, apps::read_model_json(init).at("config"));
      });
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

// Answer-only next-token loss on the QA training file; validation answer-token perplexity.
class QaFineTuning : public apps::train::TrainingTask {
 public:
  QaFineTuning(const json& config, apps::Job& job)
      : config_(config), job_(job), length_(qa_length(config)),
        lm_json_(apps::read_model_json(config.at("init").get<std::string>())),
        tokenizer_(apps::load_tokenizer(lm_json_)), eot_(*tokenizer_.end_of_text()),
        seed_(config.at("seed").get<uint64_t>()), shard_(job.shard()), rows_(apps::rank_rows(config, job)),
        init_gen_(seed_), model_(apps::build_qa_model(config, tokenizer_.vocab_size(), init_gen_)) {
    load_examples();
  }

  models::Gpt& gpt() { return *model_.gpt; }
  const apps::LanguageModel& model() const { return model_; }
  int64_t length() const { return length_; }

  // Starts from the language model's weights (the model and SeqPE, docs/method.md#long-context-question-answering); every rank reads them.
  void initialize() {
    const std::string init = config_.at("init").get<std::string>();
    model_.gpt->load_state_dict(engine::load_model_weights(init).tensors);  // a checkpoint or its export
    std::printf("initialized from %s\n", init.c_str());
  }

  void describe() const {
    std::printf("finetune_qa: %zu train / %zu valid examples at length %lld, %lld parameters; pe %s\n", train_.size(),
                valid_.size(), (long long)length_, (long long)model_.gpt->parameter_count(),
                config_.at("pe").get<std::string>().c_str());
  }

  // The model config's SeqPE options with the fine-tuning length's block shapes.
  seqpe::SeqPeOptions seqpe_options() const {
    seqpe::SeqPeOptions options = seqpe::seqpe_options(model_.gpt->config());
    const int64_t max_position = options.pe.pe_max_position;
    ENGINE_CHECK(max_position > length_, "run config: SeqPE's pe_max_position (", max_position,
                 ") must exceed the fine-tuning length (", length_, ")");
    options.main_sampler.block_shape = {length_};
    options.main_sampler.shift_downsample = config_.at("seqpe_shift_downsample").get<int64_t>();
    options.transfer.block_shape = {length_};
    options.transfer.num_indices = std::min(options.transfer.num_indices, length_);
    return options;
  }

  // The answer loss of this rank's rows of the next micro-batch. It is the mean over this rank's
  // scored tokens, whose number differs between ranks (answers differ in length), weighted by
  // scored / (mean scored per rank): the mean over ranks, which DDP takes of the gradients, is then
  // the mean over the global batch's scored tokens, as one process has.
  engine::Tensor next_loss(engine::Device device, engine::Generator& dropout) override {
    Tensor inputs, targets;
    const int64_t scored = next_batch(inputs, targets);
    const double weight = double(scored) / job_.average(double(scored));
    return model_.gpt->loss(inputs.to(device), targets.to(device), dropout, apps::kIgnore) * weight;
  }

  apps::train::Validation validate() override {
    const apps::Perplexity ppl = apps::answer_perplexity(*model_.gpt, valid_, eot_);
    char summary[128];
    std::snprintf(summary, sizeof summary, "answer ppl %.3f over %lld tokens of %zu questions", ppl.token_ppl(),
                  (long long)ppl.tokens, valid_.size());
    return {{{"valid_answer_ppl", ppl.token_ppl()}, {"valid_tokens", ppl.tokens}}, ppl.token_ppl(), summary};
  }

  json data_position() const override { return {{"data_epoch", epoch_}, {"data_index", next_}}; }
  void restore_data_position(const json& extra) override {
    epoch_ = extra.at("data_epoch").get<int64_t>();
    next_ = extra.at("data_index").get<int64_t>();
    build_order();
  }

  json model_json() const override {
    return {{"config", config_}, {"vocab_size", tokenizer_.vocab_size()}, {"tokenizer", lm_json_.at("tokenizer")}};
  }

 private:
  void load_examples() {
    const auto load = [&](const char* key, int64_t limit) {
      const std::string path = config_.at(key).get<std::string>();
      ENGINE_CHECK(!path.empty(), "run config: ", key, " is required");
      std::vector<data::QaExample> items = apps::load_qa_file(path);
      if (limit > 0 && int64_t(items.size()) > limit) items.resize(size_t(limit));
      int64_t truncated = 0, dropped = 0;
      std::vector<apps::EncodedExample> examples = apps::encode_examples(items, tokenizer_, length_, truncated, dropped);
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

  // This rank's rows of the next global micro-batch of W x rows examples (every rank walks the same
  // order) as (rows, L) inputs and targets, continuing into the next epoch. Returns the number of
  // scored (not ignored) targets.
  int64_t next_batch(Tensor& inputs, Tensor& targets) {
    const int64_t B = rows_ * shard_.count, first = shard_.index * rows_;
    std::vector<int64_t> in, tg;
    in.reserve(size_t(rows_ * length_));
    tg.reserve(size_t(rows_ * length_));
    for (int64_t b = 0; b < B; ++b) {
      if (next_ == int64_t(order_.size())) {
        ++epoch_;
        next_ = 0;
        build_order();
      }
      const int64_t index = order_[size_t(next_++)];
      if (b < first || b >= first + rows_) continue;
      const apps::EncodedExample& example = train_[size_t(index)];
      const apps::QaSequence seq = apps::make_sequence(example.prompt, example.answer, eot_, length_);
      in.insert(in.end(), seq.inputs.begin(), seq.inputs.end());
      tg.insert(tg.end(), seq.targets.begin(), seq.targets.end());
    }
    inputs = Tensor::from_indices(in, {rows_, length_});
    targets = Tensor::from_indices(tg, {rows_, length_});
    return int64_t(std::count_if(tg.begin(), tg.end(), [](int64_t t) { return t != apps::kIgnore; }));
  }

  json config_;
  apps::Job& job_;
  int64_t length_;
  json lm_json_;
  data::BpeTokenizer tokenizer_;
  int64_t eot_;
  uint64_t seed_;
  data::BatchShard shard_;
  int64_t rows_;  // this rank's rows of a micro-batch
  engine::Generator init_gen_;
  apps::LanguageModel model_;
  std::vector<apps::EncodedExample> train_, valid_;
  std::vector<int64_t> order_;  // example indices of epoch_
  int64_t epoch_ = 0, next_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  return apps::run_dist_job("finetune_qa", [&](apps::Job& job) {
    const apps::RunArguments args = parse_arguments(argc, argv);
    const json& config = args.config;
    engine::set_flush_denormal(config.at("flush_denormal").get<bool>());
    const engine::Device device = apps::setup_device("finetune_qa", config, job);
    QaFineTuning task(config, job);
    if (args.resume.empty()) task.initialize();
    const bool seqpe = task.model().seqpe != nullptr;
    const seqpe::SeqPeOptions options = seqpe ? task.seqpe_options() : seqpe::SeqPeOptions{};
    apps::train::Trainer trainer(
        apps::trainer_settings(config, device, config.at("batch").get<int64_t>() * task.length()), config, job,
        task.gpt(), [&](const engine::Module& model) {
          return apps::parameter_plan(model, config, seqpe, config.at("clip").get<double>());
        },
        apps::linear_schedule(config), task, apps::seqpe_objective(task.model(), options, config, job));
    if (!args.resume.empty()) trainer.resume(args.resume);
    task.describe();
    trainer.run();
  });
}
