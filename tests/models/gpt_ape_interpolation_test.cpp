// A GPT with learned absolute positions evaluated beyond its training length: the trained rows of
// wpe are resized to the evaluation length by linear interpolation (docs/method.md#baselines), which must
// equal a model whose table *is* that interpolation.
#include <doctest/doctest.h>

#include "engine/autograd.h"
#include "models/model_config.h"
#include "models/pe/ape.h"

using engine::Tensor;

namespace {
models::GptConfig ape_config(int64_t context, int64_t train_length) {
  return models::gpt_config_from_json({{"vocab_size", 11}, {"context", context}, {"ape_train_length", train_length},
                                       {"layers", 1}, {"channels", 16}, {"heads", 2}, {"init_std", 0.3}});
}
}  // namespace

TEST_CASE("GPT with APE: evaluation beyond ape_train_length interpolates the trained rows") {
  engine::Generator gen(51);
  models::Gpt model(ape_config(16, 8), gen);
  model.eval();
  std::vector<int64_t> ids(20);
  for (auto& id : ids) id = int64_t(gen.randint(11));
  const Tensor tokens = Tensor::from_indices(ids, {1, 20});

  // The same weights, with wpe replaced by the first 8 rows resized to 20.
  models::Gpt reference(ape_config(20, 20), gen);
  reference.eval();
  auto state = model.state_dict();
  state["wpe.weight"] = models::pe::interpolate_linear(state.at("wpe.weight").narrow(0, 0, 8), 20);
  reference.load_state_dict(state);
  engine::NoGradGuard no_grad;
  CHECK(model.forward(tokens, gen).to_vector<float>() == reference.forward(tokens, gen).to_vector<float>());
  // Within the trained rows nothing is resized: the first 8 tokens use wpe as it is.
  const Tensor head = tokens.narrow(1, 0, 8).contiguous();
  models::Gpt plain(ape_config(16, 16), gen);
  plain.load_state_dict(model.state_dict());
  plain.eval();
  CHECK(model.forward(head, gen).to_vector<float>() == plain.forward(head, gen).to_vector<float>());

  model.train();
  CHECK_THROWS_WITH_AS(model.forward(tokens.narrow(1, 0, 12).contiguous(), gen),
                       doctest::Contains("exceeds the 8 learned positions that training uses"), engine::Error);
  CHECK_THROWS_WITH_AS(models::gpt_config_from_json({{"context", 8}, {"ape_train_length", 9}}),
                       doctest::Contains("'ape_train_length' must not exceed 'context' (9 > 8)"), engine::Error);
}
