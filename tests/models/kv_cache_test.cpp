// Greedy decoding with a KV cache (Gpt::forward_cached, Gpt::generate) against recomputing the
// whole sequence at every step, for a PE added to the input (ape), one that rotates q and k (rope)
// and one that biases the scores (alibi). f32: the cached path sums the same terms in the same
// order per query row, so logits agree to ~1e-6 relative; 1e-5 is the f32 forward tolerance.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/autograd.h"
#include "models/model_config.h"

using engine::Tensor;

namespace {

models::GptConfig tiny_config(const std::string& pe) {
  return models::gpt_config_from_json({{"vocab_size", 29},
                                       {"context", 24},
                                       {"layers", 2},
                                       {"channels", 32},
                                       {"heads", 4},
                                       {"init_std", 0.3},  // large weights: a position error changes the argmax
                                       {"position_encoding", pe}});
}

double max_relative_difference(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  const auto x = a.contiguous().to_vector<float>(), y = b.contiguous().to_vector<float>();
  double worst = 0, scale = 0;
  for (size_t i = 0; i < x.size(); ++i) scale = std::max(scale, std::abs(double(y[i])));
  for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::abs(double(x[i]) - double(y[i])) / scale);
  return worst;
}

}  // namespace

TEST_CASE("KV-cached greedy decoding equals recomputing the full sequence (ape, sin, rope, alibi)") {
  for (const std::string pe_name : {"ape", "sin", "rope", "alibi"}) {
    CAPTURE(pe_name);
    engine::Generator gen(21);
    const models::GptConfig config = tiny_config(pe_name);
    models::Gpt model(config, gen, models::make_position_encoding(config, gen));
    model.eval();
    std::vector<int64_t> ids;
    for (int i = 0; i < 2 * 5; ++i) ids.push_back(int64_t(gen.randint(29)));
    const Tensor prompt = Tensor::from_indices(ids, {2, 5});
    const int64_t new_tokens = 14;

    const Tensor cached = model.generate(prompt, new_tokens, true);
    const Tensor recomputed = model.generate(prompt, new_tokens, false);
    REQUIRE(cached.shape() == engine::Shape{2, 5 + new_tokens});
    CHECK(cached.to_vector<int64_t>() == recomputed.to_vector<int64_t>());

    // Logits step by step: the prompt in one call, then one token per call, each against the
    // matching rows of a full forward over the final sequence.
    engine::NoGradGuard no_grad;
    Tensor full = model.forward(cached, gen);  // (2, 19, V)
    models::KvCache cache = model.make_cache(5 + new_tokens);
    double worst = max_relative_difference(model.forward_cached(prompt, cache), full.narrow(1, 0, 5));
    for (int64_t t = 5; t < 5 + new_tokens; ++t) {
      Tensor step = model.forward_cached(cached.narrow(1, t, 1).contiguous(), cache);
      worst = std::max(worst, max_relative_difference(step, full.narrow(1, t, 1)));
    }
    MESSAGE(pe_name << ": worst logit difference " << worst);
    CHECK(worst < 1e-5);
    CHECK(cache.length == 5 + new_tokens);
    // The buffers were allocated once, at full capacity.
    CHECK(cache.k[0].shape() == engine::Shape{2, 4, 5 + new_tokens, 8});
  }
}

TEST_CASE("APE past its trained rows: the cache indexes them resized to the evaluation length") {
  engine::Generator gen(23);
  models::Gpt model(tiny_config("ape"), gen);  // 24 trained rows
  model.eval();
  engine::NoGradGuard no_grad;
  std::vector<int64_t> ids;
  for (int i = 0; i < 40; ++i) ids.push_back(int64_t(gen.randint(29)));
  const Tensor tokens = Tensor::from_indices(ids, {1, 40});
  // A causal forward at length L resizes the rows to L: its first 30 rows are what a 30-token
  // decode with the table of length L must give, for L = 30 and L = 40 alike.
  for (const int64_t eval_length : {30, 40}) {
    CAPTURE(eval_length);
    const Tensor full = model.forward(tokens.narrow(1, 0, eval_length).contiguous(), gen);  // (1, L, V)
    models::KvCache cache = model.make_cache(30, eval_length);
    double worst = max_relative_difference(model.forward_cached(tokens.narrow(1, 0, 7).contiguous(), cache),
                                           full.narrow(1, 0, 7));
    for (int64_t t = 7; t < 30; ++t)
      worst = std::max(worst, max_relative_difference(model.forward_cached(tokens.narrow(1, t, 1).contiguous(), cache),
                                                      full.narrow(1, t, 1)));
    MESSAGE("table of " << eval_length << " rows: worst logit difference " << worst);
    CHECK(worst < 1e-5);
  }
  // The two tables differ, so the decode followed the one it was given.
  const Tensor at_30 = model.forward(tokens.narrow(1, 0, 30).contiguous(), gen);
  const Tensor at_40 = model.forward(tokens, gen).narrow(1, 0, 30);
  CHECK(max_relative_difference(at_30, at_40) > 1e-3);
}

TEST_CASE("KV cache misuse is refused with a message") {
  engine::Generator gen(22);
  const models::GptConfig config = tiny_config("ape");
  models::Gpt model(config, gen);
  Tensor prompt = Tensor::from_indices({1, 2, 3}, {1, 3});
  models::KvCache cache = model.make_cache(4);
  CHECK_THROWS_WITH_AS(model.forward_cached(prompt, cache), doctest::Contains("call eval() first"), engine::Error);
  model.eval();
  model.forward_cached(prompt, cache);
  CHECK_THROWS_WITH_AS(model.forward_cached(prompt, cache),
                       doctest::Contains("the KV cache holds 4 tokens; 3 are cached and 3 more were given"),
                       engine::Error);
  models::KvCache long_cache = model.make_cache(40);
  CHECK_THROWS_WITH_AS(model.forward_cached(Tensor::from_indices(std::vector<int64_t>(25, 1), {1, 25}), long_cache),
                       doctest::Contains("exceeds the 24 learned positions"), engine::Error);
  CHECK_THROWS_WITH_AS(model.make_cache(40, 30), doctest::Contains("needs an ape_length of at least that, got 30"),
                       engine::Error);
  models::KvCache resized = model.make_cache(30, 30);
  model.forward_cached(Tensor::from_indices(std::vector<int64_t>(25, 1), {1, 25}), resized);
  CHECK_THROWS_WITH_AS(model.forward_cached(Tensor::from_indices(std::vector<int64_t>(6, 1), {1, 6}), resized),
                       doctest::Contains("exceeds the 30 learned positions"), engine::Error);
}
