// The fused MLP and activation recompute in a tiny GPT, on the CPU, dropout on everywhere:
//   - the model's loss and every parameter gradient are the same bits as those of the same model
//     composed from the unfused ops (the MLP as two linear layers, as the model computed it before
//     ops::mlp), so the fused op changes no result;
//   - --recompute none, gelu and block give the same loss and gradient bits, and the generator ends
//     in the same state (block replays its dropout draws and gives the state back);
//   - the CPU allocator's peak over a training step falls with each mode.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "models/gpt.h"
#include "models/recompute.h"
#include "ops/attention.h"
#include "ops/cross_entropy.h"
#include "ops/dropout.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/indexing.h"
#include "ops/layernorm.h"
#include "ops/matmul.h"

using engine::Tensor;

namespace {

models::GptConfig tiny_config(int64_t layers) {
  models::GptConfig config;
  config.vocab_size = 29;
  config.context = 24;
  config.layers = layers;
  config.channels = 32;
  config.heads = 4;
  config.embedding_dropout = config.residual_dropout = config.attention_dropout = 0.1;
  return config;
}

struct Step {
  std::vector<float> loss;
  std::map<std::string, std::vector<float>> gradients;
  uint64_t generator_offset = 0;
  size_t peak_bytes = 0;  // the CPU allocator's, over forward and backward
};

// The GPT forward with the MLP as two linear layers, from the model's parameters, drawing the
// dropout masks in the model's order: the computation the model ran before the fused op.
Tensor unfused_forward(models::Gpt& model, const Tensor& tokens, engine::Generator& gen) {
  const models::GptConfig& config = model.config();
  std::map<std::string, Tensor> p;
  for (const auto& [name, t] : model.named_parameters()) p[name] = t;
  const int64_t B = tokens.size(0), T = tokens.size(1), C = config.channels, D = C / config.heads;
  Tensor h = ops::embedding(tokens, p["wte.weight"]) + ops::embedding(Tensor::arange(T, engine::Dtype::i64), p["wpe.weight"]);
  h = ops::dropout(h, config.embedding_dropout, gen, true);
  for (int64_t layer = 0; layer < config.layers; ++layer) {
    const std::string b = "h." + std::to_string(layer) + ".";
    auto linear = [&](const Tensor& x, const std::string& name, ops::Activation act = ops::Activation::none) {
      return ops::linear(x, p[b + name + ".weight"], p[b + name + ".bias"], act);
    };
    auto norm = [&](const Tensor& x, const std::string& name) {
      return ops::layer_norm(x, p[b + name + ".weight"], p[b + name + ".bias"], config.layer_norm_eps);
    };
    std::vector<Tensor> qkv = ops::split(linear(norm(h, "ln_1"), "attn.c_attn"), {C, C, C}, 2);
    for (Tensor& part : qkv) part = part.view({B, T, config.heads, D}).permute({0, 2, 1, 3});
    ops::AttentionOptions options;
    options.causal = true;
    options.scale = 1.0 / std::sqrt(double(D));
    options.dropout_p = config.attention_dropout;
    options.dropout_gen = &gen;
    const Tensor attended = ops::attention(qkv[0], qkv[1], qkv[2], options).permute({0, 2, 1, 3}).reshape({B, T, C});
    h = h + ops::dropout(linear(attended, "attn.c_proj"), config.residual_dropout, gen, true);
    const Tensor mlp = linear(linear(norm(h, "ln_2"), "mlp.c_fc", ops::Activation::gelu), "mlp.c_proj");
    h = h + ops::dropout(mlp, config.residual_dropout, gen, true);
  }
  return ops::matmul(ops::layer_norm(h, p["ln_f.weight"], p["ln_f.bias"], config.layer_norm_eps), p["wte.weight"],
                     false, true);
}

// One training step's loss and gradients of a fresh tiny GPT (the same weights and batch every call),
// through the model (with `recompute`) or through unfused_forward.
Step train_step(models::Recompute recompute, bool unfused, int64_t layers = 2, int64_t batch = 3) {
  const models::RecomputeScope scope(recompute);
  engine::Generator init(7), gen(11);
  models::Gpt model(tiny_config(layers), init);
  model.train();
  const int64_t T = 24;
  std::vector<int64_t> ids(size_t(batch * (T + 1)));
  for (int64_t& id : ids) id = int64_t(init.randint(29));
  const Tensor data = Tensor::from_indices(ids, {batch, T + 1});
  const Tensor tokens = data.narrow(1, 0, T).contiguous(), targets = data.narrow(1, 1, T).contiguous();
  engine::cpu_allocator().reset_peak_stats();
  Tensor loss = ops::cross_entropy(unfused ? unfused_forward(model, tokens, gen) : model.forward(tokens, gen), targets);
  loss.backward();
  Step step;
  step.peak_bytes = engine::cpu_allocator().stats().peak_bytes_in_use;
  step.loss = loss.to_vector<float>();
  for (const auto& [name, t] : model.named_parameters()) {
    REQUIRE_MESSAGE(t.grad().defined(), name);
    step.gradients[name] = t.grad().to_vector<float>();
  }
  step.generator_offset = gen.offset();
  return step;
}

void check_same_bits(const Step& got, const Step& want) {
  CHECK(got.loss == want.loss);
  CHECK(got.generator_offset == want.generator_offset);
  REQUIRE(got.gradients.size() == want.gradients.size());
  for (const auto& [name, grad] : want.gradients) {
    CAPTURE(name);
    CHECK(got.gradients.at(name) == grad);
  }
}

}  // namespace

TEST_CASE("a tiny GPT with the fused MLP gives the loss and gradients of the unfused model, bit for bit") {
  check_same_bits(train_step(models::Recompute::none, false), train_step(models::Recompute::none, true));
}

TEST_CASE("activation recompute (gelu, block) gives the loss and gradients without recompute, bit for bit") {
  const Step kept = train_step(models::Recompute::none, false);
  for (models::Recompute mode : {models::Recompute::gelu, models::Recompute::block}) {
    CAPTURE(models::recompute_name(mode));
    check_same_bits(train_step(mode, false), kept);
  }
}

TEST_CASE("activation recompute lowers the CPU allocator's peak over a training step") {
  // 4 layers, batch 8: activations dominate the weights, as in training.
  const size_t none = train_step(models::Recompute::none, false, 4, 8).peak_bytes;
  const size_t gelu = train_step(models::Recompute::gelu, false, 4, 8).peak_bytes;
  const size_t block = train_step(models::Recompute::block, false, 4, 8).peak_bytes;
  MESSAGE("peak bytes: none ", none, ", gelu ", gelu, ", block ", block);
  CHECK(gelu < none);
  CHECK(block < gelu);
}

TEST_CASE("--recompute values") {
  CHECK(models::parse_recompute("block") == models::Recompute::block);
  CHECK(models::parse_recompute("gelu") == models::Recompute::gelu);
  CHECK(models::parse_recompute("none") == models::Recompute::none);
  CHECK_THROWS_WITH_AS(models::parse_recompute("all"), "--recompute all: expected none, gelu or block", engine::Error);
}
