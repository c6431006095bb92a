// Resuming training from a checkpoint continues the exact same loss curve: a tiny GPT with dropout
// (embedding, residual and attention) on is trained for N steps, its engine::TrainingState (model,
// optimizer, step, the dropout and data generators, the config) is saved with save_checkpoint,
// loaded into freshly built objects, and trained M more steps; the losses must equal bitwise those
// of an uninterrupted N + M run.
#include <doctest/doctest.h>

#include "data/temp_dir.h"
#include "engine/checkpoint.h"
#include "engine/optim/adamw.h"
#include "models/model_config.h"
#include "ops/cross_entropy.h"

using engine::Tensor;

namespace {

const int64_t kVocab = 19, kContext = 8, kBatch = 3, kCorpus = 200;

models::GptConfig resume_config() {
  return models::gpt_config_from_json({{"vocab_size", kVocab}, {"context", kContext}, {"layers", 2},
                                       {"channels", 16}, {"heads", 2}, {"embedding_dropout", 0.1},
                                       {"residual_dropout", 0.2}, {"attention_dropout", 0.3},
                                       {"position_encoding", "rope"}});
}

// A fixed token stream; batches are random windows of it.
const std::vector<int64_t>& corpus() {
  static const std::vector<int64_t> tokens = [] {
    engine::Generator gen(99);
    std::vector<int64_t> t(kCorpus);
    for (auto& id : t) id = int64_t(gen.randint(kVocab));
    return t;
  }();
  return tokens;
}

// Everything a run holds: model, optimizer, and the generators for dropout and batch sampling.
struct Run {
  explicit Run(const models::GptConfig& config, uint64_t init_seed)
      : init(init_seed), model(config, init, models::make_position_encoding(config, init)),
        optimizer(engine::optim::weight_decay_groups(model.named_parameters(), 3e-3, 0.1)) {}

  // One optimizer step on a random batch; returns its loss.
  double step() {
    std::vector<int64_t> inputs, targets;
    for (int64_t b = 0; b < kBatch; ++b) {
      const int64_t start = int64_t(data.randint(uint64_t(kCorpus - kContext - 1)));
      for (int64_t t = 0; t < kContext; ++t) {
        inputs.push_back(corpus()[size_t(start + t)]);
        targets.push_back(corpus()[size_t(start + t + 1)]);
      }
    }
    optimizer.zero_grad();
    Tensor loss = ops::cross_entropy(model.forward(Tensor::from_indices(inputs, {kBatch, kContext}), dropout),
                                     Tensor::from_indices(targets, {kBatch, kContext}));
    loss.backward();
    optimizer.step();
    return loss.item();
  }

  engine::TrainingState state() const {
    engine::TrainingState s;
    s.model = model.state_dict();
    s.optimizer = optimizer.state_dict();
    s.step = optimizer.step_count();
    s.generators = {{"dropout", {dropout.seed(), dropout.offset()}}, {"data", {data.seed(), data.offset()}}};
    s.extra = {{"config", models::gpt_config_to_json(model.config())}};
    return s;
  }

  void load(const engine::TrainingState& s) {
    model.load_state_dict(s.model);
    optimizer.load_state_dict(s.optimizer);
    dropout.set_state(s.generators.at("dropout").first, s.generators.at("dropout").second);
    data.set_state(s.generators.at("data").first, s.generators.at("data").second);
  }

  engine::Generator init;
  engine::Generator dropout{1001};
  engine::Generator data{2002};
  models::Gpt model;
  engine::optim::AdamW optimizer;
};

}  // namespace

TEST_CASE("a resumed run continues the exact loss curve (dropout on, random batches)") {
  const int n = 4, m = 4;
  std::vector<double> uninterrupted;
  {
    Run run(resume_config(), 7);
    for (int i = 0; i < n + m; ++i) uninterrupted.push_back(run.step());
  }

  TempDir dir;
  const std::string path = (dir / "run.ckpt.safetensors").string();
  std::vector<double> resumed;
  {
    Run run(resume_config(), 7);
    for (int i = 0; i < n; ++i) resumed.push_back(run.step());
    engine::save_checkpoint(path, run.state());
  }
  // Fresh objects: another init seed (overwritten by the load), generators at other states, and
  // the config read back from the checkpoint.
  const engine::TrainingState state = engine::load_checkpoint(path);
  CHECK(state.step == n);
  Run run(models::gpt_config_from_json(state.extra.at("config")), 12345);
  run.dropout.set_state(5, 5);
  run.data.set_state(6, 6);
  run.load(state);
  CHECK(run.optimizer.step_count() == n);
  for (int i = 0; i < m; ++i) resumed.push_back(run.step());

  CHECK(resumed == uninterrupted);
  // Dropout matters: without restoring its generator the curve differs.
  Run wrong(resume_config(), 7);
  wrong.load(state);
  wrong.dropout.set_state(1001, 0);
  CHECK(wrong.step() != uninterrupted[size_t(n)]);
}
