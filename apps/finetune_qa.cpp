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
#include <cstdio>
#include <fstream>
#include <map>
#include <numeric>

#include "apps/dist_job.h"
#include "apps/lm_training.h"
#include "apps/qa_run.h"
#include "engine/checkpoint.h"
#include "engine/error.h"
#include "ops/cross_entropy.h"
#include "ops/elementwise.h"

namespace {

using engine::Tensor;
using nlohmann::json;

// The run config: defaults, then (new runs) the language model's model keys, the --config file and
// the overrides; a resumed run starts from its checkpoint's config instead of the first two.
lm::RunArguments parse_arguments(int argc, char** argv) {
  static const std::map<std::string, std::string> flags = {
      {"--init", "init"}, {"--train", "train_file"}, {"--valid", "valid_file"}, {"--steps", "steps"},
      {"--batch", "batch"}, {"--lr", "lr"}, {"--seed", "seed"}, {"--out", "out"}, {"--context", "qa_context"}};
  const json defaults = qa::default_qa_config();
  return lm::parse_run_arguments("finetune_qa", argc, argv, flags, defaults, [&](const json& config) {
    const std::string init = config.at("init").get<std::string>();
    ENGINE_CHECK(!init.empty(), "finetune_qa: --init LM_CHECKPOINT is required");
    return qa::inherit_model_config(defaults, lm::read_model_json(init).at("config"));
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

class Trainer {
 public:
  Trainer(const json& config, dist_job::Job& job)
      : length_(qa_length(config)), lm_json_(lm::read_model_json(config.at("init").get<std::string>())),
        tokenizer_(qa::load_tokenizer(lm_json_)), eot_(*tokenizer_.end_of_text()),
        seed_(config.at("seed").get<uint64_t>()), shard_(job.shard()),
        run_(config, job, tokenizer_.vocab_size(), qa::build_qa_model) {
    ENGINE_CHECK(config.at("batch").get<int64_t>() > 0, "run config: batch must be positive");
    shard_.rows(config.at("batch").get<int64_t>(), "finetune_qa");  // a batch the ranks cannot split fails here
    load_examples();
    run_.set_pe_clip(config.at("clip").get<double>());
    if (run_.model().seqpe) make_samplers();
  }

  // Starts from the language model's weights (the model and SeqPE, SPEC §10); every rank reads them.
  void initialize() {
    const std::string init = config().at("init").get<std::string>();
    run_.gpt().load_state_dict(engine::load_checkpoint(init).model);
    std::printf("initialized from %s\n", init.c_str());
  }

  void resume(const std::string& path) {
    run_.resume(path, [&](const json& extra) {
      epoch_ = extra.at("data_epoch").get<int64_t>();
      next_ = extra.at("data_index").get<int64_t>();
      build_order();
    });
  }

  void run() {
    std::printf("finetune_qa: %zu train / %zu valid examples at length %lld, %lld parameters; pe %s\n", train_.size(),
                valid_.size(), (long long)length_, (long long)run_.gpt().parameter_count(),
                config().at("pe").get<std::string>().c_str());
    run_.run(config().at("batch").get<int64_t>() * length_, [&] { return answer_loss(); },
             [&](std::ofstream& metrics) { validate(metrics); });
  }

 private:
  const json& config() const { return run_.config(); }

  void load_examples() {
    const auto load = [&](const char* key, int64_t limit) {
      const std::string path = config().at(key).get<std::string>();
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
    valid_ = load("valid_file", config().at("valid_examples").get<int64_t>());
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

  // The model config's SeqPE options with the fine-tuning length's block shapes.
  void make_samplers() {
    seqpe::SeqPeOptions options = seqpe::seqpe_options(run_.gpt().config());
    const int64_t max_position = options.pe.pe_max_position;
    ENGINE_CHECK(max_position > length_, "run config: SeqPE's pe_max_position (", max_position,
                 ") must exceed the fine-tuning length (", length_, ")");
    options.main_sampler.block_shape = {length_};
    options.main_sampler.shift_downsample = config().at("seqpe_shift_downsample").get<int64_t>();
    options.transfer.block_shape = {length_};
    options.transfer.num_indices = std::min(options.transfer.num_indices, length_);
    run_.make_samplers(options);
  }

  // This rank's rows of the next global batch of B examples (every rank walks the same order) as
  // (B/W, L) inputs and targets, continuing into the next epoch. Returns the number of scored
  // (not ignored) targets.
  int64_t next_batch(Tensor& inputs, Tensor& targets) {
    const int64_t B = config().at("batch").get<int64_t>(), rows = shard_.rows(B, "finetune_qa");
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

  // The answer loss of this rank's rows of the next batch. It is the mean over this rank's scored
  // tokens, whose number differs between ranks (answers differ in length), weighted by scored /
  // (mean scored per rank): the mean over ranks, which DDP takes of the gradients, is then the mean
  // over the global batch's scored tokens, as one process has.
  Tensor answer_loss() {
    Tensor inputs, targets;
    const int64_t scored = next_batch(inputs, targets);
    const double weight = double(scored) / run_.job().average(double(scored));
    return ops::cross_entropy(run_.gpt().forward(inputs, run_.dropout_generator()), targets, qa::kIgnore) * weight;
  }

  // Validation answer-token perplexity; saves the last and, when it improved, the best checkpoint.
  void validate(std::ofstream& metrics) {
    const lm::Perplexity ppl = qa::answer_perplexity(run_.gpt(), valid_, eot_);
    const int64_t step = run_.step_count();
    const bool best = run_.improves(ppl.token_ppl());
    std::printf("valid step %lld: answer ppl %.3f over %lld tokens of %zu questions%s\n", (long long)step,
                ppl.token_ppl(), (long long)ppl.tokens, valid_.size(), best ? " (best)" : "");
    metrics << json{{"step", step}, {"valid_answer_ppl", ppl.token_ppl()}, {"valid_tokens", ppl.tokens}}.dump()
            << "\n" << std::flush;
    save("last");
    if (best) save("best");
  }

  void save(const std::string& name) {
    const json model_json = {{"config", config()}, {"vocab_size", tokenizer_.vocab_size()},
                             {"tokenizer", lm_json_.at("tokenizer")}};
    run_.save(name, {{"data_epoch", epoch_}, {"data_index", next_}}, model_json);
  }

  int64_t length_;
  json lm_json_;
  data::BpeTokenizer tokenizer_;
  int64_t eot_;
  uint64_t seed_;
  data::BatchShard shard_;
  lm::TrainingRun run_;
  std::vector<qa::EncodedExample> train_, valid_;
  std::vector<int64_t> order_;  // example indices of epoch_
  int64_t epoch_ = 0, next_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  return dist_job::run("finetune_qa", [&](dist_job::Job& job) {
    const lm::RunArguments args = parse_arguments(argc, argv);
    Trainer trainer(args.config, job);
    if (args.resume.empty()) trainer.initialize();
    else trainer.resume(args.resume);
    trainer.run();
  });
}
