// Gpt::loss, the training loss through the fused classifier, against forward() followed by
// ops::cross_entropy: a small GPT trained both ways gives the same losses bit for bit when the loss
// is back-propagated with gradient 1, within a stated bound when it is scaled (as gradient
// accumulation does), and its step peaks one (B, T, V) buffer lower.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "engine/allocator.h"
#include "engine/optim/adamw.h"
#include "models/gpt.h"
#include "ops/cross_entropy.h"
#include "ops/elementwise.h"

using engine::Tensor;

namespace {

constexpr int64_t kVocab = 4099, kContext = 24, kBatch = 3;  // V ≫ C, as in GPT-2: the loss is the step's peak

models::GptConfig small_config() {
  models::GptConfig config;
  config.vocab_size = kVocab;
  config.context = 64;  // the memory check's T; training uses kContext
  config.layers = 2;
  config.channels = 32;
  config.heads = 4;
  config.embedding_dropout = config.residual_dropout = config.attention_dropout = 0.1;
  return config;
}

// How a step computes its loss from the model, inputs, targets (a few ignored) and dropout generator.
using LossOf = std::function<Tensor(models::Gpt&, const Tensor&, const Tensor&, engine::Generator&)>;
const LossOf kUnfused = [](models::Gpt& model, const Tensor& inputs, const Tensor& targets, engine::Generator& gen) {
  return ops::cross_entropy(model.forward(inputs, gen), targets);
};
const LossOf kFused = [](models::Gpt& model, const Tensor& inputs, const Tensor& targets, engine::Generator& gen) {
  return model.loss(inputs, targets, gen);
};

// The losses of `steps` AdamW steps on one random batch (every 7th target ignored), each loss scaled
// by `scale` before its backward (1/A with gradient accumulation over A micro-batches), from one seed;
// dropout draws new masks every step.
std::vector<double> train(const LossOf& loss_of, int steps, double scale) {
  engine::Generator gen(23);
  models::Gpt model(small_config(), gen);
  engine::optim::AdamW optimizer({engine::optim::ParamGroup{model.named_parameters(), 3e-3, 0.1}});
  std::vector<int64_t> input_ids(size_t(kBatch * kContext)), target_ids(input_ids.size());
  for (auto& id : input_ids) id = int64_t(gen.randint(uint64_t(kVocab)));
  for (size_t i = 0; i < target_ids.size(); ++i)
    target_ids[i] = i % 7 == 3 ? -100 : int64_t(gen.randint(uint64_t(kVocab)));
  const Tensor inputs = Tensor::from_indices(input_ids, {kBatch, kContext});
  const Tensor targets = Tensor::from_indices(target_ids, {kBatch, kContext});
  std::vector<double> losses;
  for (int step = 0; step < steps; ++step) {
    optimizer.zero_grad();
    Tensor loss = loss_of(model, inputs, targets, gen);
    losses.push_back(loss.item());
    (scale == 1.0 ? loss : loss * scale).backward();
    optimizer.step();
  }
  return losses;
}

}  // namespace

TEST_CASE("Gpt::loss trains a small GPT to the same losses as forward + cross_entropy, bit for bit") {
  const std::vector<double> unfused = train(kUnfused, 12, 1.0), fused = train(kFused, 12, 1.0);
  MESSAGE("losses " << unfused.front() << " -> " << unfused.back());
  CHECK(unfused.back() < unfused.front());
  CHECK(fused == unfused);
}

TEST_CASE("Gpt::loss with a scaled loss (gradient accumulation) stays within 1e-5 of forward + cross_entropy") {
  // The fused gradient is the one for 1 times 1/3, rounded once more (the unfused op folds the 1/3
  // into its factors): a relative 6e-8 per logit gradient, which AdamW's normalised steps carry into
  // the weights at about that relative size. After 12 steps the losses differ in the 7th digit at
  // most; the bound is 1e-5 relative.
  const std::vector<double> unfused = train(kUnfused, 12, 1.0 / 3.0), fused = train(kFused, 12, 1.0 / 3.0);
  double worst = 0.0;
  for (size_t i = 0; i < unfused.size(); ++i) worst = std::max(worst, std::abs(fused[i] - unfused[i]) / unfused[i]);
  MESSAGE("largest relative loss difference over 12 steps: " << worst);
  CHECK(fused.front() == unfused.front());
  CHECK(worst < 1e-5);
}

TEST_CASE("Gpt::loss: the step peaks one (B, T, V) buffer lower than forward + cross_entropy, less the head's gradients") {
  // B·T = 1024 rows of V = 4099: the logits (16 MiB) dwarf the rest, as GPT-2's do.
  const int64_t B = 16, T = small_config().context;
  engine::Generator gen(4);
  models::Gpt model(small_config(), gen);
  std::vector<int64_t> ids(size_t(B * (T + 1)));
  for (auto& id : ids) id = int64_t(gen.randint(uint64_t(kVocab)));
  const Tensor data = Tensor::from_indices(ids, {B, T + 1});
  const Tensor inputs = data.narrow(1, 0, T).contiguous(), targets = data.narrow(1, 1, T).contiguous();
  CHECK(ops::logits_consumable(model.forward(inputs, gen)));  // the head's output is nobody else's
  engine::Allocator& allocator = engine::cpu_allocator();
  // Peak bytes above the start of a forward and backward, the parameters' gradients already allocated.
  auto peak_of = [&](const LossOf& loss_of) {
    model.zero_grad();
    loss_of(model, inputs, targets, gen).backward();
    allocator.reset_peak_stats();
    const size_t before = allocator.stats().bytes_in_use;
    loss_of(model, inputs, targets, gen).backward();
    return allocator.stats().peak_bytes_in_use - before;
  };
  const size_t unfused = peak_of(kUnfused), fused = peak_of(kFused);
  auto bytes = [](int64_t floats) { return engine::allocation_size_class(size_t(floats) * sizeof(float)); };
  const int64_t C = small_config().channels;
  const size_t buffer = bytes(B * T * kVocab);
  // The unfused step peaks in the loss's backward (logits and their gradient); the fused one may
  // peak in the head's backward instead, where the gradient buffer meets the tied weight's two
  // gradients and their sum (V, C) and the hidden states' gradient (B, T, C).
  const size_t head_gradients = 3 * bytes(kVocab * C) + bytes(B * T * C);
  MESSAGE("step peak above the start: forward + cross_entropy " << unfused << " B, Gpt::loss " << fused
                                                                << " B, one (B, T, V) buffer " << buffer << " B");
  CHECK(fused + buffer <= unfused + head_gradients);
  CHECK(fused + buffer / 2 <= unfused);
}
