// End-to-end checks of the engine on tiny models: a model built from the ops must be able to
// memorise one batch, and two runs with one seed must give bitwise-identical losses (also with
// attention dropout, whose masks come from the seeded generator).
#include <doctest/doctest.h>

#include <cmath>

#include "engine/optim/adamw.h"
#include "models/layers.h"
#include "models/gpt.h"
#include "ops/cross_entropy.h"
#include "ops/elementwise.h"

using engine::Dtype;
using engine::Tensor;

namespace {

// x: (N, 12) -> logits (N, 5) through one hidden GELU layer.
class TinyMlp : public engine::Module {
 public:
  explicit TinyMlp(engine::Generator& gen) {
    fc1 = register_module("fc1", std::make_shared<models::Linear>(12, 32, true, 0.3, gen));
    fc2 = register_module("fc2", std::make_shared<models::Linear>(32, 5, true, 0.3, gen));
  }
  Tensor forward(const Tensor& x) const { return fc2->forward(fc1->forward(x, ops::Activation::gelu)); }
  std::shared_ptr<models::Linear> fc1, fc2;
};

engine::optim::AdamW make_adamw(const engine::Module& model, double lr) {
  return engine::optim::AdamW({engine::optim::ParamGroup{model.named_parameters(), lr, 0.0}});
}

models::GptConfig tiny_transformer_config(double attention_dropout) {
  models::GptConfig config;
  config.vocab_size = 23;
  config.context = 16;
  config.layers = 1;
  config.channels = 32;
  config.heads = 4;
  config.embedding_dropout = config.residual_dropout = 0.0;
  config.attention_dropout = attention_dropout;
  return config;
}

std::vector<double> train_transformer(uint64_t seed, int steps, double attention_dropout = 0.0) {
  engine::Generator gen(seed);
  const int64_t vocab = 23, context = 16, batch = 4;
  models::Gpt model(tiny_transformer_config(attention_dropout), gen);
  std::vector<int64_t> ids(size_t(batch * (context + 1)));
  for (auto& id : ids) id = int64_t(gen.randint(uint64_t(vocab)));
  Tensor data = Tensor::from_indices(ids, {batch, context + 1});
  Tensor inputs = data.narrow(1, 0, context).contiguous(), targets = data.narrow(1, 1, context).contiguous();
  auto optimizer = make_adamw(model, 1e-2);
  std::vector<double> losses;
  for (int step = 0; step < steps; ++step) {
    optimizer.zero_grad();
    Tensor loss = ops::cross_entropy(model.forward(inputs, gen), targets);
    loss.backward();
    optimizer.step();
    losses.push_back(loss.item());
  }
  return losses;
}

}  // namespace

TEST_CASE("a tiny MLP memorises a fixed batch") {
  engine::Generator gen(3);
  TinyMlp model(gen);
  Tensor x = Tensor::randn({16, 12}, gen);
  std::vector<int64_t> labels(16);
  for (auto& y : labels) y = int64_t(gen.randint(5));
  Tensor y = Tensor::from_indices(labels, {16});
  auto optimizer = make_adamw(model, 1e-2);
  double first = 0, last = 0;
  for (int step = 0; step < 300; ++step) {
    optimizer.zero_grad();
    Tensor loss = ops::cross_entropy(model.forward(x), y);
    loss.backward();
    optimizer.step();
    if (step == 0) first = loss.item();
    last = loss.item();
  }
  MESSAGE("MLP loss " << first << " -> " << last);
  CHECK(last < 0.01 * first);
}

TEST_CASE("a one-block transformer memorises a fixed batch; the loss starts at ln(vocab)") {
  std::vector<double> losses = train_transformer(11, 250);
  MESSAGE("transformer loss " << losses.front() << " -> " << losses.back());
  // Embeddings start at std 0.02, so the logits are nearly zero and the loss is ln(V).
  CHECK(losses.front() == doctest::Approx(std::log(23.0)).epsilon(0.01));
  CHECK(losses.back() < 0.01 * losses.front());
}

TEST_CASE("same seed, bitwise-identical losses") {
  std::vector<double> a = train_transformer(5, 8), b = train_transformer(5, 8);
  CHECK(a == b);
  CHECK(train_transformer(6, 8) != a);
}

TEST_CASE("with attention dropout: same seed, bitwise-identical losses; the masks change the run") {
  const std::vector<double> a = train_transformer(5, 8, 0.3), b = train_transformer(5, 8, 0.3);
  CHECK(a == b);
  CHECK(a != train_transformer(5, 8));
  CHECK(train_transformer(6, 8, 0.3) != a);
}

TEST_CASE("attention dropout acts in training mode only") {
  engine::Generator init_a(8), init_b(8);
  models::Gpt with(tiny_transformer_config(0.5), init_a), without(tiny_transformer_config(0.0), init_b);
  const Tensor tokens = Tensor::from_indices({1, 5, 7, 2, 9, 3}, {1, 6});
  engine::Generator gen_a(1), gen_b(1);
  CHECK(with.forward(tokens, gen_a).to_vector<float>() != without.forward(tokens, gen_b).to_vector<float>());
  CHECK(gen_a.offset() > gen_b.offset());  // the masks' counters were reserved
  with.eval();
  without.eval();
  const uint64_t offset = gen_a.offset();
  CHECK(with.forward(tokens, gen_a).to_vector<float>() == without.forward(tokens, gen_b).to_vector<float>());
  CHECK(gen_a.offset() == offset);
  // KV-cached generation runs in evaluation mode: the same tokens with and without dropout configured.
  CHECK(with.generate(tokens, 4).to_vector<int64_t>() == without.generate(tokens, 4).to_vector<int64_t>());
}
