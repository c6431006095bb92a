// Perplexity values, not just formats: token_perplexity (eval_lm, train_lm's validation) and
// answer_perplexity (finetune_qa's validation) against sums of per-token log-probabilities computed
// here from forward()'s logits. Chunks and examples of different lengths make a wrong weighting
// (a short last chunk counted at full length, an answer weighted by its sequence length) show.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <memory>
#include <unistd.h>

#include "apps/lm_run.h"
#include "apps/qa_run.h"
#include "data/token_file.h"
#include "models/model_config.h"
#include "ops/softmax.h"

using engine::Tensor;

namespace {

constexpr int64_t kVocab = 23;

std::unique_ptr<models::Gpt> tiny_model(engine::Generator& gen) {
  models::GptConfig config;
  config.vocab_size = kVocab;
  config.context = 16;
  config.layers = 1;
  config.channels = 16;
  config.heads = 2;
  config.position_encoding = "rope";
  auto model = std::make_unique<models::Gpt>(config, gen, models::make_position_encoding(config, gen));
  model->eval();
  return model;
}

// Σ -log p(targets[t] | inputs[..t]) over the positions whose target is not `ignore`, from one forward.
double summed_nll(models::Gpt& model, const std::vector<int64_t>& inputs, const std::vector<int64_t>& targets,
                  int64_t ignore = -1) {
  engine::Generator unused(0);
  const int64_t T = int64_t(inputs.size());
  const std::vector<double> log_probs =
      ops::log_softmax(model.forward(Tensor::from_indices(inputs, {1, T}), unused), -1).to_vector<double>();
  double nll = 0;
  for (int64_t t = 0; t < T; ++t)
    if (targets[size_t(t)] != ignore) nll -= log_probs[size_t(t * kVocab + targets[size_t(t)])];
  return nll;
}

// 31 tokens (30 predictions: in chunks of 8, three of 8 and a last one of 6), written to `path`
// as a token file.
std::vector<data::TokenId> stream_of_31(const std::filesystem::path& path) {
  std::vector<data::TokenId> stream;
  for (int i = 0; i < 31; ++i) stream.push_back(data::TokenId((i * 7 + 3) % kVocab));
  data::write_token_file(path, stream, kVocab);
  return stream;
}

// Σ NLL of the 31-token stream's 30 predictions cut into chunks of 8 (each chunk from its own
// forward), counting only the positions t inside their chunk for which scored(t) holds.
double chunked_nll(models::Gpt& model, const std::vector<data::TokenId>& stream,
                   const std::function<bool(int64_t)>& scored) {
  double nll = 0;
  for (int64_t start = 0; start < 30; start += 8) {
    const int64_t T = std::min<int64_t>(8, 30 - start);
    const std::vector<int64_t> inputs(stream.begin() + start, stream.begin() + start + T);
    std::vector<int64_t> targets(stream.begin() + start + 1, stream.begin() + start + T + 1);
    for (int64_t t = 0; t < T; ++t)
      if (!scored(t)) targets[size_t(t)] = -1;
    nll += summed_nll(model, inputs, targets);
  }
  return nll;
}

// A token file's path in the temporary directory, unique to this process.
std::filesystem::path temp_token_path(const std::string& name) {
  return std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()) + ".tokens");
}

// A tiny model and the 31-token stream as a token file (removed at the end of the test).
struct StreamFixture {
  engine::Generator gen{5};
  std::unique_ptr<models::Gpt> model_ptr = tiny_model(gen);
  models::Gpt& model = *model_ptr;
  std::filesystem::path path = temp_token_path("test_perplexity");
  std::vector<data::TokenId> stream = stream_of_31(path);
  data::TokenFile tokens{path};
  ~StreamFixture() { std::filesystem::remove(path); }
};

}  // namespace

TEST_CASE_FIXTURE(StreamFixture,
                  "token_perplexity sums every prediction once, the short last chunk at its own length") {
  const double expected = chunked_nll(model, stream, [](int64_t) { return true; });
  const apps::Perplexity ppl = apps::token_perplexity(model, tokens, 8);
  CHECK(ppl.tokens == 30);
  CHECK(ppl.nll == doctest::Approx(expected).epsilon(1e-5));
  CHECK(ppl.token_ppl() == doctest::Approx(std::exp(expected / 30)).epsilon(1e-5));

  // max_tokens: the first 12 predictions, as 8 + 4.
  const std::vector<int64_t> head(stream.begin(), stream.begin() + 13);
  const double first_12 = summed_nll(model, {head.begin(), head.begin() + 8}, {head.begin() + 1, head.begin() + 9}) +
                          summed_nll(model, {head.begin() + 8, head.begin() + 12}, {head.begin() + 9, head.end()});
  const apps::Perplexity limited = apps::token_perplexity(model, tokens, 8, 12);
  CHECK(limited.tokens == 12);
  CHECK(limited.nll == doctest::Approx(first_12).epsilon(1e-5));
}

TEST_CASE_FIXTURE(StreamFixture,
                  "token_perplexity's position buckets hold each position's predictions of every chunk") {
  // Chunks of 8 (8, 8, 8, 6 predictions) in buckets of 3 positions: [0, 3), [3, 6), [6, 8), so
  // 3 + 3 + 3 + 3 = 12, 12 and 2 + 2 + 2 + 0 = 6 predictions. A bucket's expected NLL sums the
  // chunks' predictions at its positions, each from the forward of its own chunk.
  const apps::Perplexity ppl = apps::token_perplexity(model, tokens, 8, 0, 3);
  REQUIRE(ppl.bucket_tokens == std::vector<int64_t>{12, 12, 6});
  REQUIRE(ppl.bucket_nll.size() == 3);
  for (int64_t bucket = 0; bucket < 3; ++bucket) {
    const double expected = chunked_nll(model, stream, [&](int64_t t) { return t / 3 == bucket; });
    CHECK(ppl.bucket_nll[size_t(bucket)] == doctest::Approx(expected).epsilon(1e-5));
  }
  CHECK(ppl.bucket_nll[0] + ppl.bucket_nll[1] + ppl.bucket_nll[2] == doctest::Approx(ppl.nll).epsilon(1e-12));

  // The default: one bucket of the whole length.
  const apps::Perplexity whole = apps::token_perplexity(model, tokens, 8);
  CHECK(whole.bucket_tokens == std::vector<int64_t>{30});
  CHECK(whole.bucket_nll.front() == doctest::Approx(whole.nll).epsilon(1e-12));
  CHECK_THROWS_WITH_AS(apps::token_perplexity(model, tokens, 8, 0, -1), doctest::Contains("bucket_width"),
                       engine::Error);
}

TEST_CASE("perplexity of an empty split or example set is an error, not NaN") {
  engine::Generator gen(5);
  const std::unique_ptr<models::Gpt> model = tiny_model(gen);
  const std::filesystem::path path = temp_token_path("test_perplexity_empty");
  const std::vector<data::TokenId> one_token = {3};
  data::write_token_file(path, one_token, kVocab);
  CHECK_THROWS_WITH_AS(apps::token_perplexity(*model, data::TokenFile(path), 8),
                       doctest::Contains("has 1 tokens, no prediction to score: the split is empty"), engine::Error);
  std::filesystem::remove(path);
  CHECK_THROWS_WITH_AS(apps::answer_perplexity(*model, {}, kVocab - 1).token_ppl(),
                       doctest::Contains("perplexity of no tokens"), engine::Error);
}

TEST_CASE("answer_perplexity weights each example by its scored tokens, not its length") {
  engine::Generator gen(9);
  const std::unique_ptr<models::Gpt> model_ptr = tiny_model(gen);
  models::Gpt& model = *model_ptr;
  const int64_t eot = kVocab - 1;
  // Prompts and answers of different lengths, so that per-sequence and per-token weights differ.
  const std::vector<apps::EncodedExample> examples = {
      {{1, 2, 3, 4, 5, 6, 7, 8, 9}, {10}},
      {{3, 1}, {4, 1, 5, 9}},
      {{2, 7, 1, 8, 2}, {8, 1}},
  };
  double expected = 0;
  int64_t scored = 0;
  for (const apps::EncodedExample& e : examples) {
    const int64_t T = int64_t(e.prompt.size() + e.answer.size());
    const apps::QaSequence seq = apps::make_sequence(e.prompt, e.answer, eot, T);
    expected += summed_nll(model, seq.inputs, seq.targets, apps::kIgnore);
    scored += int64_t(e.answer.size()) + 1;
  }
  const apps::Perplexity ppl = apps::answer_perplexity(model, examples, eot);
  CHECK(ppl.tokens == scored);
  CHECK(ppl.nll == doctest::Approx(expected).epsilon(1e-5));
}
