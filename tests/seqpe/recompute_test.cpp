// Activation recompute with SeqPE in the model: a tiny GPT whose attention takes SeqPE's position
// terms (attn_scalar with one W_qk shared by the layers, whose position logits are made on the
// first layer's call and served to the others; attn_add with a W_qk per layer) gives the same loss
// and parameter-gradient bits with --recompute none, gelu and block, dropout on everywhere (the
// encoder's included).
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/autograd.h"
#include "engine/rng.h"
#include "models/gpt.h"
#include "models/recompute.h"
#include "ops/cross_entropy.h"
#include "seqpe/seqpe_position_encoding.h"

using engine::Tensor;
using seqpe::ApplyMethod;
using seqpe::QkProjection;

namespace {

struct Step {
  std::vector<float> loss;
  std::map<std::string, std::vector<float>> gradients;
};

Step train_step(models::Recompute recompute, ApplyMethod apply, QkProjection projection) {
  const models::RecomputeScope scope(recompute);
  engine::Generator init(3), gen(4);
  models::GptConfig config;
  config.vocab_size = 19;
  config.context = 12;
  config.layers = 3;
  config.channels = 16;
  config.heads = 2;
  config.embedding_dropout = config.residual_dropout = config.attention_dropout = 0.1;
  config.position_encoding = "seqpe";
  seqpe::SeqPeConfig pe_config;
  pe_config.apply = apply;
  pe_config.qk_projection = projection;
  pe_config.pe_max_position = 100;
  pe_config.model_width = 16;
  pe_config.model_heads = 2;
  pe_config.model_layers = 3;
  pe_config.transfer_heads = 2;
  pe_config.encoder.max_digits = 2;
  pe_config.encoder.channels = 8;
  pe_config.encoder.heads = 2;
  pe_config.encoder.layers = 1;
  pe_config.encoder.residual_dropout = 0.1;
  pe_config.encoder.out_features = pe_config.out_features();
  auto pe = std::make_shared<seqpe::SeqPe>(pe_config, init);
  models::Gpt model(config, init, pe);
  model.train();
  std::vector<int64_t> ids(3 * 13);
  for (int64_t& id : ids) id = int64_t(init.randint(19));
  const Tensor data = Tensor::from_indices(ids, {3, 13});
  const Tensor inputs = data.narrow(1, 0, 12).contiguous(), targets = data.narrow(1, 1, 12).contiguous();
  Tensor loss = ops::cross_entropy(model.forward(inputs, gen), targets);
  loss.backward();
  Step step;
  step.loss = loss.to_vector<float>();
  for (const auto& [name, t] : model.named_parameters())
    if (t.grad().defined()) step.gradients[name] = t.grad().to_vector<float>();
  return step;
}

}  // namespace

TEST_CASE("GPT + SeqPE: activation recompute gives the gradients without it, bit for bit") {
  for (auto [apply, projection] : {std::pair{ApplyMethod::attn_scalar, QkProjection::single},
                                   std::pair{ApplyMethod::attn_add, QkProjection::multi}}) {
    CAPTURE(int(apply));
    const Step kept = train_step(models::Recompute::none, apply, projection);
    CHECK(kept.gradients.count("pe.encoder.digit_embedding.weight"));
    for (models::Recompute mode : {models::Recompute::gelu, models::Recompute::block}) {
      CAPTURE(models::recompute_name(mode));
      const Step got = train_step(mode, apply, projection);
      CHECK(got.loss == kept.loss);
      REQUIRE(got.gradients.size() == kept.gradients.size());
      for (const auto& [name, grad] : kept.gradients) {
        CAPTURE(name);
        CHECK(got.gradients.at(name) == grad);
      }
    }
  }
}
