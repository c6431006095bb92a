// A tiny GPT trained with bf16 products (ops/precision.h): its losses follow the fp32 run's within
// bf16's precision, and it memorises a batch as the fp32 model does.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "engine/optim/adamw.h"
#include "models/gpt.h"
#include "ops/cpu/bf16_kernel.h"
#include "ops/cross_entropy.h"
#include "ops/precision.h"

using engine::Tensor;

namespace {

// Losses of `steps` AdamW steps of a 2-layer GPT on one fixed batch, seeded identically for every
// precision.
std::vector<double> train_gpt(ops::Precision precision, int steps) {
  ops::PrecisionScope scope(precision);
  engine::Generator gen(17);
  models::GptConfig config;
  config.vocab_size = 50;
  config.context = 32;
  config.layers = 2;
  config.channels = 64;
  config.heads = 4;
  config.embedding_dropout = config.residual_dropout = config.attention_dropout = 0.0;
  models::Gpt model(config, gen);
  const int64_t batch = 4;
  std::vector<int64_t> ids(size_t(batch * (config.context + 1)));
  for (auto& id : ids) id = int64_t(gen.randint(uint64_t(config.vocab_size)));
  const Tensor data = Tensor::from_indices(ids, {batch, config.context + 1});
  const Tensor inputs = data.narrow(1, 0, config.context).contiguous();
  const Tensor targets = data.narrow(1, 1, config.context).contiguous();
  engine::optim::AdamW optimizer({engine::optim::ParamGroup{model.named_parameters(), 3e-3, 0.0}});
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

TEST_CASE("a tiny GPT in bf16: losses within bf16 precision of fp32, and it memorises a batch") {
  MESSAGE("bf16 products on " << ops::precision_description(ops::Precision::bf16));
  const std::vector<double> fp32 = train_gpt(ops::Precision::fp32, 150), bf16 = train_gpt(ops::Precision::bf16, 150);
  CHECK(bf16 != fp32);  // the products were rounded
  // The first 20 steps track fp32 to within 1 %: each product's operands carry bf16's 2^-9 relative
  // rounding, the sums over 64-256 terms of random sign leave ~1e-3 of the loss, and AdamW's steps
  // compound it slowly (measured: at most 0.3 % here). Later the runs drift apart as any two
  // trajectories of a memorising model do.
  for (size_t step = 0; step < 20; ++step) {
    CAPTURE(step);
    CHECK(std::abs(bf16[step] - fp32[step]) <= 1e-2 * fp32[step]);
  }
  MESSAGE("loss fp32 " << fp32.front() << " -> " << fp32.back() << ", bf16 " << bf16.front() << " -> " << bf16.back());
  CHECK(bf16.back() < 0.01 * bf16.front());
  CHECK(fp32.back() < 0.01 * fp32.front());
}
