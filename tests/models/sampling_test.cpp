// Next-token choice (models/sampling) and sampled decoding (Gpt::generate with SamplingOptions):
// greedy is the argmax, a vanishing temperature and top-k = 1 reduce to greedy, draws follow the
// tempered top-k softmax, a seed reproduces a sample exactly, the KV-cached path draws the same
// tokens as recomputing the sequence, and generation stops at the stop token.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>

#include "models/model_config.h"
#include "models/sampling.h"

using engine::Tensor;

namespace {

std::unique_ptr<models::Gpt> tiny_model(const std::string& pe, engine::Generator& gen) {
  const models::GptConfig config = models::gpt_config_from_json(
      {{"vocab_size", 29}, {"context", 32}, {"layers", 2}, {"channels", 32}, {"heads", 4}, {"init_std", 0.3},
       {"position_encoding", pe}});
  auto model = std::make_unique<models::Gpt>(config, gen, models::make_position_encoding(config, gen));
  model->eval();
  return model;
}

// Frequencies of each token over `draws` single-row draws from `logits` (V).
std::vector<double> frequencies(const std::vector<double>& logits, const models::SamplingOptions& options, int draws) {
  engine::Generator gen(7);
  const Tensor row = Tensor::from_vector(logits, {1, int64_t(logits.size())});
  std::vector<double> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) counts[size_t(models::next_tokens(row, options, gen).to_vector<int64_t>()[0])] += 1;
  for (double& c : counts) c /= draws;
  return counts;
}

}  // namespace

TEST_CASE("next_tokens: greedy is the row argmax, the first on ties") {
  engine::Generator gen(1);
  const Tensor logits = Tensor::from_vector({0, 3, 1, 3, -2, 5, 5, 0}, {2, 4});
  CHECK(models::next_tokens(logits, {}, gen).to_vector<int64_t>() == std::vector<int64_t>{1, 1});
  CHECK(gen.offset() == 0);  // greedy draws nothing
  models::SamplingOptions top1{1.0, 1, std::nullopt};
  CHECK(models::next_tokens(logits, top1, gen).to_vector<int64_t>() == std::vector<int64_t>{1, 1});
  CHECK_THROWS_WITH(models::next_tokens(logits, {-1.0, 0, std::nullopt}, gen), doctest::Contains("temperature"));
}

TEST_CASE("next_tokens: draws follow softmax(logits / temperature) over the top k") {
  // p = (0.5, 0.3, 0.2, 0); 40000 draws: a frequency's standard error is at most 0.0025, so 0.01
  // is four standard errors (and the seed is fixed, so the test is deterministic).
  const std::vector<double> logits = {std::log(0.5), std::log(0.3), std::log(0.2), -1e30};
  const int draws = 40000;
  auto expect = [&](const std::vector<double>& got, const std::vector<double>& want) {
    for (size_t i = 0; i < want.size(); ++i) CHECK(std::abs(got[i] - want[i]) < 0.01);
  };
  expect(frequencies(logits, {1.0, 0, std::nullopt}, draws), {0.5, 0.3, 0.2, 0});
  expect(frequencies(logits, {1.0, 2, std::nullopt}, draws), {0.625, 0.375, 0, 0});
  // Temperature 2: p ∝ sqrt(p).
  const double z = std::sqrt(0.5) + std::sqrt(0.3) + std::sqrt(0.2);
  expect(frequencies(logits, {2.0, 0, std::nullopt}, draws),
         {std::sqrt(0.5) / z, std::sqrt(0.3) / z, std::sqrt(0.2) / z, 0});
}

TEST_CASE("Gpt::generate sampling: temperature to 0 is greedy, a seed reproduces, the cache changes nothing") {
  for (const std::string pe : {"rope", "ape"}) {
    CAPTURE(pe);
    engine::Generator init(21);
    const auto owned = tiny_model(pe, init);
    models::Gpt& model = *owned;
    const Tensor prompt = Tensor::from_indices({3, 1, 4, 1, 5, 9, 2, 6}, {2, 4});
    const int64_t new_tokens = 20;
    const std::vector<int64_t> greedy = model.generate(prompt, new_tokens).to_vector<int64_t>();

    engine::Generator g0(5);
    CHECK(model.generate(prompt, new_tokens, {1e-6, 0, std::nullopt}, g0).to_vector<int64_t>() == greedy);

    const models::SamplingOptions hot{1.5, 10, std::nullopt};
    engine::Generator a(11), b(11), c(12), uncached(11);
    const std::vector<int64_t> first = model.generate(prompt, new_tokens, hot, a).to_vector<int64_t>();
    CHECK(model.generate(prompt, new_tokens, hot, b).to_vector<int64_t>() == first);
    CHECK(model.generate(prompt, new_tokens, hot, uncached, false).to_vector<int64_t>() == first);
    CHECK(model.generate(prompt, new_tokens, hot, c).to_vector<int64_t>() != first);  // another seed, another sample
    CHECK(first != greedy);
  }
}

TEST_CASE("Gpt::generate stops once every row has produced the stop token") {
  engine::Generator init(21);
  const auto owned = tiny_model("rope", init);
  models::Gpt& model = *owned;
  const Tensor prompt = Tensor::from_indices({3, 1, 4, 1}, {1, 4});
  const std::vector<int64_t> greedy = model.generate(prompt, 12).to_vector<int64_t>();
  // Stop at the third generated token's value: generation ends where it first appears.
  const int64_t stop = greedy[4 + 2];
  size_t first = 4;
  while (greedy[first] != stop) ++first;
  engine::Generator gen(0);
  const std::vector<int64_t> stopped = model.generate(prompt, 12, {0, 0, stop}, gen).to_vector<int64_t>();
  CHECK(stopped == std::vector<int64_t>(greedy.begin(), greedy.begin() + int64_t(first) + 1));
}
