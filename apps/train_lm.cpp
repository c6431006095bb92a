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
#include <cstdio>
#include <fstream>
#include <map>

#include "apps/dist_job.h"
#include "apps/lm_run.h"
#include "apps/lm_training.h"
#include "data/text_corpus.h"
#include "models/model_config.h"
#include "ops/cross_entropy.h"
#include "seqpe/position_signal.h"
#include "seqpe/seqpe_options.h"

namespace {

using nlohmann::json;

// The run config from the defaults, the --config file and the overrides, in that order.
lm::RunArguments parse_arguments(int argc, char** argv) {
  static const std::map<std::string, std::string> flags = {
      {"--pe", "pe"}, {"--steps", "steps"}, {"--batch", "batch"}, {"--lr", "lr"}, {"--seed", "seed"},
      {"--out", "out"}, {"--corpus", "corpus"}, {"--context", "context"}};
  return lm::parse_run_arguments("train_lm", argc, argv, flags, lm::default_run_config());
}

class Trainer {
 public:
  Trainer(const json& config, dist_job::Job& job)
      : corpus_(config.at("corpus").get<std::string>(), config.at("vocab_size").get<int64_t>()),
        batcher_(corpus_.split("train"), config.at("context").get<int64_t>(), config.at("batch").get<int64_t>(),
                 config.at("seed").get<uint64_t>() + 2, job.shard()),
        run_(config, job, corpus_.tokenizer().vocab_size(), lm::build_model) {
    if (run_.model().seqpe) {
      const seqpe::SeqPeOptions options = seqpe::seqpe_options(run_.gpt().config());
      run_.set_pe_clip(options.clip);
      run_.make_samplers(options);
    }
  }

  void resume(const std::string& path) {
    run_.resume(path, [&](const json& extra) {
      batcher_.set_position({extra.at("data_epoch").get<int64_t>(), extra.at("data_block").get<int64_t>()});
    });
  }

  void run() {
    std::printf("train_lm: %s, vocab %lld, %lld train tokens, %lld parameters; pe %s\n", corpus_.cache_dir().c_str(),
                (long long)corpus_.tokenizer().vocab_size(), (long long)corpus_.split("train").size(),
                (long long)run_.gpt().parameter_count(), config().at("pe").get<std::string>().c_str());
    // The language-model loss of this rank's rows.
    const auto data_loss = [&] {
      const data::TokenBatch batch = batcher_.next();
      return ops::cross_entropy(run_.gpt().forward(batch.inputs, run_.dropout_generator()), batch.targets);
    };
    run_.run(config().at("batch").get<int64_t>() * context(), data_loss,
             [&](std::ofstream& metrics) { validate(metrics); });
  }

 private:
  const json& config() const { return run_.config(); }
  int64_t context() const { return config().at("context").get<int64_t>(); }

  // Validation perplexity at the training length; saves the last and, when it improved, the best checkpoint.
  void validate(std::ofstream& metrics) {
    const lm::Perplexity ppl = lm::token_perplexity(run_.gpt(), corpus_.split("valid"), context(),
                                                    config().at("valid_tokens").get<int64_t>());
    const int64_t step = run_.step_count();
    const bool best = run_.improves(ppl.token_ppl());
    std::printf("valid step %lld: token ppl %.3f at length %lld over %lld tokens%s\n", (long long)step,
                ppl.token_ppl(), (long long)context(), (long long)ppl.tokens, best ? " (best)" : "");
    metrics << json{{"step", step}, {"valid_ppl", ppl.token_ppl()}, {"valid_tokens", ppl.tokens}}.dump() << "\n"
            << std::flush;
    // SeqPE's position term against the content's (seqpe/position_signal.h), on up to 4 sequences.
    const int64_t rows = std::min<int64_t>(4, corpus_.split("valid").size() / context());
    if (run_.model().seqpe && rows > 0) {
      std::vector<int64_t> first(size_t(rows * context()));
      corpus_.split("valid").read(0, first);
      const json signal = seqpe::position_signal_metrics(run_.gpt(), *run_.model().seqpe,
                                                         engine::Tensor::from_indices(first, {rows, context()}));
      metrics << json{{"step", step}, {"position_signal", signal}}.dump() << "\n" << std::flush;
    }
    save("last");
    if (best) save("best");
  }

  void save(const std::string& name) {
    const json model_json = {{"config", config()}, {"model", models::gpt_config_to_json(run_.gpt().config())},
                             {"vocab_size", corpus_.tokenizer().vocab_size()},
                             {"tokenizer", corpus_.cache_dir().string()}};
    run_.save(name, {{"data_epoch", batcher_.position().epoch}, {"data_block", batcher_.position().block}},
              model_json);
  }

  data::TextCorpus corpus_;
  data::BlockBatcher batcher_;
  lm::TrainingRun run_;
};

}  // namespace

int main(int argc, char** argv) {
  return dist_job::run("train_lm", [&](dist_job::Job& job) {
    const lm::RunArguments args = parse_arguments(argc, argv);
    // Rank 0 trains and caches the tokenizer and token files before the others open them.
    job.prepare_on_main([&] {
      data::TextCorpus(args.config.at("corpus").get<std::string>(), args.config.at("vocab_size").get<int64_t>());
    });
    Trainer trainer(args.config, job);
    if (!args.resume.empty()) trainer.resume(args.resume);
    trainer.run();
  });
}
