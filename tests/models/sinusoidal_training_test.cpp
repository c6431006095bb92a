// The sinusoidal baseline of a GPT: the table starts the size of the token embeddings (elements of
// RMS init_std, models/pe/sinusoidal.h), and a tiny GPT with it learns a task that needs both the
// token and its absolute position, y_t = x_t for t < T/2 and x_t + 1 (mod V) after, on fresh random
// sequences, which NoPE learns only in part.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "engine/optim/adamw.h"
#include "models/gpt.h"
#include "models/model_config.h"
#include "ops/cross_entropy.h"

using engine::Tensor;
using nlohmann::json;

namespace {

// One layer of width 32, vocabulary 8, context 16, no dropout.
models::GptConfig tiny_config(const std::string& pe, const json& options) {
  models::GptConfig config;
  config.vocab_size = 8;
  config.context = 16;
  config.layers = 1;
  config.channels = 32;
  config.heads = 2;
  config.embedding_dropout = config.residual_dropout = config.attention_dropout = 0.0;
  config.position_encoding = pe;
  config.position_encoding_options = options;
  return config;
}

// Mean loss of the last 20 of `steps` AdamW steps (lr 1e-2), each on a fresh batch of 16 sequences.
double train_position_task(const std::string& pe, const json& options, int steps) {
  const models::GptConfig config = tiny_config(pe, options);
  const int64_t vocab = config.vocab_size, context = config.context, batch = 16;
  engine::Generator gen(17);
  models::Gpt model(config, gen, models::make_position_encoding(config, gen));
  engine::optim::AdamW optimizer({engine::optim::ParamGroup{model.named_parameters(), 1e-2, 0.0}});
  double tail = 0;
  for (int step = 0; step < steps; ++step) {
    std::vector<int64_t> inputs(size_t(batch * context)), targets(inputs.size());
    for (int64_t i = 0; i < batch * context; ++i) {
      inputs[size_t(i)] = int64_t(gen.randint(uint64_t(vocab)));
      targets[size_t(i)] = (inputs[size_t(i)] + (i % context >= context / 2 ? 1 : 0)) % vocab;
    }
    optimizer.zero_grad();
    Tensor loss = ops::cross_entropy(model.forward(Tensor::from_indices(inputs, {batch, context}), gen),
                                     Tensor::from_indices(targets, {batch, context}));
    loss.backward();
    optimizer.step();
    if (step >= steps - 20) tail += loss.item() / 20.0;
  }
  return tail;
}

}  // namespace

TEST_CASE("a GPT's sinusoidal table starts at the token embeddings' size; the 'scale' option overrides it") {
  models::GptConfig config = tiny_config("sin", {{"max_position", 999}});
  engine::Generator gen(3);
  const auto rms_of_table = [&](const models::GptConfig& c) {
    const auto pe = models::make_position_encoding(c, gen);
    const std::vector<double> table = pe->state_dict().at("table").to_vector<double>();
    double squares = 0;
    for (double v : table) squares += v * v;
    return std::sqrt(squares / double(table.size()));
  };
  // Over 1000 positions the sines and cosines have RMS 1/sqrt(2) to about 1 %.
  CHECK(rms_of_table(config) == doctest::Approx(config.init_std).epsilon(0.02));
  config.position_encoding_options["scale"] = 1.0;
  CHECK(rms_of_table(config) == doctest::Approx(1.0 / std::sqrt(2.0)).epsilon(0.02));
}

TEST_CASE("a tiny GPT with the sinusoidal PE learns a task that needs token and position; NoPE only in part") {
  const int steps = 150;
  const double chance = std::log(8.0);
  const double sinusoidal = train_position_task("sin", json::object(), steps);
  const double nope = train_position_task("nope", json::object(), steps);
  MESSAGE("loss after " << steps << " steps (chance " << chance << "): sin " << sinusoidal << ", NoPE " << nope);
  CHECK(sinusoidal < 0.3);  // NoPE 0.52: it cannot tell t < T/2 from t >= T/2 exactly
  CHECK(sinusoidal < 0.5 * nope);
}
