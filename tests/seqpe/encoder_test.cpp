// The SeqPE encoder (docs/method.md#embedding-the-digits, docs/method.md#the-position-encoder): shapes, parameter layout, the readout seeing every digit under
// the causal mask, temperature, init, f64 gradchecks with one and two blocks, digits out of range,
// and the contrastive loss falling when a tiny encoder is trained alone.
#include <doctest/doctest.h>

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/gradcheck.h"
#include "engine/optim/adamw.h"
#include "engine/rng.h"
#include "seqpe/contrastive_loss.h"
#include "seqpe/contrastive_sampler.h"
#include "seqpe/encoder.h"
#include "seqpe/position_tokenizer.h"

using engine::Dtype;
using engine::Tensor;

namespace {

seqpe::SeqPeEncoderConfig tiny_config(int64_t dims, int64_t max_digits) {
  seqpe::SeqPeEncoderConfig c;
  c.dims = dims;
  c.max_digits = max_digits;
  c.channels = 8;
  c.heads = 2;
  c.layers = 1;
  c.out_features = 6;
  c.residual_dropout = 0.0;
  return c;
}

std::set<std::string> parameter_names(const engine::Module& m) {
  std::set<std::string> names;
  for (const auto& [name, t] : m.named_parameters()) names.insert(name);
  return names;
}

double std_of(const Tensor& t) {
  const auto v = t.to_vector<double>();
  double sum = 0, sq = 0;
  for (double x : v) sum += x, sq += x * x;
  const double mean = sum / double(v.size());
  return std::sqrt(sq / double(v.size()) - mean * mean);
}

}  // namespace

TEST_CASE("encoder: (N, n·M) digits -> (N, D_out); the dim embedding exists only for n > 1") {
  engine::Generator gen(1);
  seqpe::SeqPeEncoder text(tiny_config(1, 3), gen);
  Tensor digits = Tensor::from_indices({0, 1, 2, 9, 9, 9, 0, 0, 0, 4, 5, 6, 1, 0, 0}, {5, 3});
  CHECK(text.forward(digits, gen).shape() == engine::Shape{5, 6});
  auto names = parameter_names(text);
  CHECK(names.count("digit_embedding.weight"));
  CHECK(names.count("slot_embedding.weight"));
  CHECK(names.count("readout"));
  CHECK(names.count("h.0.attn.c_attn.weight"));
  CHECK(names.count("ln_f.weight"));
  CHECK(names.count("out_proj.bias"));
  CHECK_FALSE(names.count("dim_embedding.weight"));

  seqpe::SeqPeEncoder image(tiny_config(2, 2), gen);
  CHECK(parameter_names(image).count("dim_embedding.weight"));
  CHECK(image.forward(Tensor::from_indices({0, 2, 0, 3, 9, 9, 1, 0}, {2, 4}), gen).shape() == engine::Shape{2, 6});
  CHECK_THROWS_WITH_AS(image.forward(digits, gen), doctest::Contains("SeqPeEncoder"), engine::Error);
}

TEST_CASE("encoder: under the causal mask the readout, appended last, sees every digit slot") {
  for (bool causal : {true, false}) {
    engine::Generator gen(2);
    auto config = tiny_config(2, 2);
    config.causal = causal;
    seqpe::SeqPeEncoder encoder(config, gen);
    encoder.eval();
    const std::vector<int64_t> base = {1, 2, 3, 4};
    const auto reference = encoder.forward(Tensor::from_indices(base, {1, 4}), gen).to_vector<double>();
    for (size_t slot = 0; slot < base.size(); ++slot) {
      auto changed = base;
      changed[slot] = 7;
      const auto out = encoder.forward(Tensor::from_indices(changed, {1, 4}), gen).to_vector<double>();
      double diff = 0;
      for (size_t i = 0; i < out.size(); ++i) diff = std::max(diff, std::abs(out[i] - reference[i]));
      CHECK_MESSAGE(diff > 1e-5, "causal " << causal << ", slot " << slot);
    }
  }
}

TEST_CASE("encoder: the output is divided by the temperature") {
  auto config = tiny_config(1, 3);
  engine::Generator gen_a(3), gen_b(3);
  seqpe::SeqPeEncoder plain(config, gen_a);
  config.temperature = 2.0;
  seqpe::SeqPeEncoder tempered(config, gen_b);
  Tensor digits = Tensor::from_indices({1, 2, 3, 4, 5, 6}, {2, 3});
  const auto a = plain.forward(digits, gen_a).to_vector<double>();
  const auto b = tempered.forward(digits, gen_b).to_vector<double>();
  for (size_t i = 0; i < a.size(); ++i) CHECK(b[i] == doctest::Approx(a[i] / 2).epsilon(1e-6));
}

TEST_CASE("encoder: text init is N(0, 0.02) everywhere, residual projections not rescaled") {
  engine::Generator gen(4);
  seqpe::SeqPeEncoderConfig config;
  config.channels = 64;
  config.heads = 1;
  config.layers = 4;
  config.out_features = 64;
  seqpe::SeqPeEncoder encoder(config, gen);
  const auto state = encoder.state_dict();
  for (const char* name : {"h.3.attn.c_proj.weight", "h.3.mlp.c_proj.weight", "h.0.attn.c_attn.weight",
                           "digit_embedding.weight", "out_proj.weight"}) {
    CHECK_MESSAGE(std_of(state.at(name)) == doctest::Approx(0.02).epsilon(0.1), name);
  }
  CHECK(std_of(state.at("ln_f.weight")) == 0.0);
}

TEST_CASE("encoder: gradcheck in f64 w.r.t. the readout, the embeddings and block weights") {
  // The first block's LayerNorm and QKV projection run on the distinct token inputs, gathered per
  // token; the last block computes the readout's row only; with one block, it is both.
  for (int64_t layers : {2, 1}) {
    CAPTURE(layers);
    engine::Generator gen(5);
    auto config = tiny_config(2, 2);
    config.layers = layers;
    config.dtype = Dtype::f64;
    config.init_std = 0.5;  // large enough that every path carries a gradient well above rounding
    seqpe::SeqPeEncoder encoder(config, gen);
    auto state = encoder.state_dict();
    Tensor digits = Tensor::from_indices({0, 2, 0, 3, 9, 1, 4, 0, 5, 5, 5, 5}, {3, 4});
    std::vector<Tensor> checked = {state.at("readout"),         state.at("digit_embedding.weight"),
                                   state.at("slot_embedding.weight"), state.at("dim_embedding.weight"),
                                   state.at("h.0.ln_1.weight"), state.at("h.0.attn.c_attn.weight"),
                                   state.at("h.0.attn.c_attn.bias"), state.at("h.0.mlp.c_proj.weight")};
    if (layers == 2) {
      checked.push_back(state.at("h.1.attn.c_attn.weight"));
      checked.push_back(state.at("h.1.mlp.c_fc.weight"));
    }
    auto result = engine::gradcheck([&](const std::vector<Tensor>&) { return encoder.forward(digits, gen); }, checked);
    CHECK_MESSAGE(result.ok, result.message);
  }
}

TEST_CASE("encoder: a digit outside [0, base) is an error naming it") {
  engine::Generator gen(6);
  seqpe::SeqPeEncoder encoder(tiny_config(1, 3), gen);
  CHECK_THROWS_WITH_AS(encoder.forward(Tensor::from_indices({1, 2, 10}, {1, 3}), gen),
                       doctest::Contains("digit 10 at (0, 2)"), engine::Error);
  CHECK_THROWS_WITH_AS(encoder.forward(Tensor::from_indices({-1, 2, 3}, {1, 3}), gen),
                       doctest::Contains("digit -1 at (0, 0)"), engine::Error);
}

TEST_CASE("encoder: the contrastive loss falls when a tiny encoder is trained alone") {
  engine::Generator gen(6);
  auto sampler_config = seqpe::ContrastiveSamplerConfig::text_defaults();
  sampler_config.pe_max_position = 1000;
  sampler_config.num_candidates = 8;
  sampler_config.batch_size = 16;
  seqpe::ContrastiveSampler sampler(sampler_config, 7);
  const auto tokenizer = seqpe::PositionTokenizer::from_pe_max_position(1000, 1);
  seqpe::SeqPeEncoderConfig config;
  config.max_digits = tokenizer.max_digits();
  config.channels = 32;
  config.heads = 2;
  config.layers = 1;
  config.out_features = 32;
  config.residual_dropout = 0.0;
  seqpe::SeqPeEncoder encoder(config, gen);
  engine::optim::AdamW optimizer({engine::optim::ParamGroup{encoder.named_parameters(), 3e-3, 0.0}});
  const int64_t B = sampler_config.batch_size, K = sampler_config.num_candidates;
  const int steps = 300, window = 20;
  double first = 0, last = 0;
  for (int step = 0; step < steps; ++step) {
    const auto batch = sampler.next();
    seqpe::PositionList all(1);
    for (int64_t i = 0; i < batch.pivots.size(); ++i) all.push_back(batch.pivots[i]);
    for (int64_t i = 0; i < batch.candidates.size(); ++i) all.push_back(batch.candidates[i]);
    // One encoder forward over pivots and candidates, split afterwards (docs/method.md#one-encoder-forward-per-step).
    Tensor e = encoder.forward(tokenizer.encode_batch(all).digits, gen);  // (B + B·K, D)
    Tensor pivots = e.narrow(0, 0, B), candidates = e.narrow(0, B, B * K).reshape({B, K, config.out_features});
    optimizer.zero_grad();
    Tensor loss = seqpe::contrastive_loss(pivots, candidates, batch.labels);
    loss.backward();
    optimizer.step();
    if (step < window) first += loss.item() / window;
    if (step >= steps - window) last += loss.item() / window;
  }
  MESSAGE("contrastive loss " << first << " -> " << last);
  CHECK(last < 0.6 * first);
}
