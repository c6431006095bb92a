// SeqPE's attn_scalar position term in a GPT: the language-model loss alone trains the encoder and
// W_qk through it (finite differences at the production init), and the position-signal diagnostic
// (seqpe/position_signal.h) against a naive computation from the parameters.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/rng.h"
#include "models/gpt.h"
#include "ops/cross_entropy.h"
#include "ops/elementwise.h"
#include "seqpe/position_signal.h"
#include "seqpe/seqpe_position_encoding.h"

using engine::Dtype;
using engine::Tensor;

namespace {

// A GPT of width 8 with 2 heads (d = 4), f64, no dropout, SeqPE attn_scalar with one W_qk
// (positions < 100), both auxiliary weights 0: the LM loss is the only objective.
struct TinyModel {
  std::shared_ptr<seqpe::SeqPe> pe;
  std::unique_ptr<models::Gpt> gpt;
};

TinyModel tiny_model(int64_t layers, double alpha, double init_std, uint64_t seed) {
  engine::Generator gen(seed);
  models::GptConfig config;
  config.vocab_size = 11;
  config.context = 6;
  config.layers = layers;
  config.channels = 8;
  config.heads = 2;
  config.embedding_dropout = config.residual_dropout = config.attention_dropout = 0.0;
  config.position_encoding = "seqpe";
  config.dtype = Dtype::f64;
  seqpe::SeqPeConfig c;
  c.pe_max_position = 100;
  c.scalar_scale = alpha;
  c.model_width = 8;
  c.model_heads = 2;
  c.model_layers = layers;
  c.transfer_heads = 2;
  c.contrastive_weight = 0.0;
  c.transfer_weight = 0.0;
  c.init_std = init_std;
  c.encoder.max_digits = 2;
  c.encoder.channels = 8;
  c.encoder.heads = 2;
  c.encoder.layers = 1;
  c.encoder.residual_dropout = 0.0;
  c.encoder.init_std = init_std;
  c.encoder.dtype = Dtype::f64;
  c.encoder.out_features = c.out_features();
  TinyModel m;
  m.pe = std::make_shared<seqpe::SeqPe>(c, gen);
  m.gpt = std::make_unique<models::Gpt>(config, gen, m.pe);
  return m;
}

const Tensor tokens = Tensor::from_indices({1, 4, 6, 2, 0, 3, 3, 5, 9, 10, 7, 8}, {2, 6});
const Tensor targets = Tensor::from_indices({4, 6, 2, 0, 3, 3, 5, 9, 10, 7, 8, 1}, {2, 6});

double lm_loss(models::Gpt& model) {
  engine::Generator unused(0);
  return ops::cross_entropy(model.forward(tokens, unused), targets).item();
}

double squared_norm(const Tensor& t) {
  double s = 0;
  for (double v : t.to_vector<double>()) s += v * v;
  return s;
}

// Population std and mean of scale·a·keys_j over j = 0..i; a and keys_j: d values.
std::pair<double, double> naive_row(const std::vector<double>& a, const std::vector<std::vector<double>>& keys,
                                    int64_t i, double scale) {
  std::vector<double> s;
  for (int64_t j = 0; j <= i; ++j) {
    double dot = 0;
    for (size_t c = 0; c < a.size(); ++c) dot += a[c] * keys[size_t(j)][c];
    s.push_back(scale * dot);
  }
  double mean = 0, var = 0;
  for (double v : s) mean += v / double(s.size());
  for (double v : s) var += (v - mean) * (v - mean) / double(s.size());
  return {std::sqrt(var), mean};
}

std::vector<double> slice(const std::vector<double>& v, size_t first, size_t count) {
  return {v.begin() + long(first), v.begin() + long(first + count)};
}

Tensor parameter(const engine::Module& m, const std::string& name) {
  for (const auto& [n, t] : m.named_parameters())
    if (n == name) return t;
  FAIL("no parameter " << name);
  return Tensor();
}

}  // namespace

TEST_CASE("the LM loss alone trains SeqPE's encoder and W_qk through attn_scalar, at the production init 0.02") {
  TinyModel m = tiny_model(2, 1.0, 0.02, 31);
  m.gpt->train();
  engine::Generator unused(0);
  ops::cross_entropy(m.gpt->forward(tokens, unused), targets).backward();
  int64_t pe_parameters = 0;
  for (const auto& [name, param] : m.gpt->named_parameters()) {
    if (name.rfind("pe.", 0) != 0) continue;
    ++pe_parameters;
    CAPTURE(name);
    REQUIRE(param.grad().defined());
    CHECK(squared_norm(param.grad()) > 0.0);
  }
  CHECK(pe_parameters > 10);  // the encoder's tables, blocks and readout, and W_qk

  // The gradients are the loss's: a central difference along the gradient's own direction u = g/|g|
  // must give |g|, for W_qk and for the encoder's digit table. f64 with step 1e-3: the loss's
  // rounding (~1e-15) costs ~5e-13 of a derivative of ~1e-8 or more, the O(h²) truncation less.
  for (const std::string name : {"pe.qk_proj.weight", "pe.encoder.digit_embedding.weight"}) {
    CAPTURE(name);
    Tensor param = parameter(*m.gpt, name);
    const double norm = std::sqrt(squared_norm(param.grad()));
    const Tensor direction = param.grad() * (1.0 / norm);
    const double h = 1e-3;
    double up = 0, down = 0;
    {
      engine::NoGradGuard no_grad;
      const Tensor original = param.detach().clone();
      param.copy_(original + direction * h);
      up = lm_loss(*m.gpt);
      param.copy_(original - direction * h);
      down = lm_loss(*m.gpt);
      param.copy_(original);
    }
    const double numeric = (up - down) / (2 * h);
    MESSAGE(name << ": gradient norm " << norm << ", finite difference along it " << numeric);
    CHECK(norm > 1e-9);
    CHECK(std::abs(numeric - norm) < 1e-4 * norm);
  }
}

TEST_CASE("with α = 0 the LM loss sends no gradient into SeqPE: attn_scalar is its only path") {
  TinyModel m = tiny_model(2, 0.0, 0.02, 31);
  engine::Generator unused(0);
  ops::cross_entropy(m.gpt->forward(tokens, unused), targets).backward();
  for (const auto& [name, param] : m.gpt->named_parameters())
    if (name.rfind("pe.", 0) == 0 && param.grad().defined()) {
      CAPTURE(name);
      CHECK(squared_norm(param.grad()) == 0.0);
    }
}

TEST_CASE("position signal: spreads of α·pq·pk and q·k over the keys, as computed from the parameters") {
  const double alpha = 1.5;
  TinyModel m = tiny_model(1, alpha, 0.3, 7);
  m.gpt->train();
  const seqpe::PositionSignal signal = seqpe::measure_position_signal(*m.gpt, *m.pe, tokens);
  CHECK(m.gpt->is_training());  // the mode is restored
  REQUIRE(signal.layers.size() == 1);
  REQUIRE(signal.layers[0].size() == 2);

  const int64_t B = 2, T = 6, C = 8, H = 2, d = 4;
  const double scale = 1.0 / std::sqrt(double(d));
  // pq, pk: W_qk e + b for the encoder's outputs at positions 0..T-1, split [pq | pk] then per head.
  seqpe::PositionList positions(1);
  for (int64_t p = 0; p < T; ++p) positions.push_back(p);
  engine::Generator unused(0);
  m.gpt->eval();
  const Tensor e = m.pe->encoder().forward(m.pe->tokenizer().encode_batch(positions).digits, unused);
  const std::vector<double> ev = e.to_vector<double>();
  const std::vector<double> w = parameter(*m.gpt, "pe.qk_proj.weight").to_vector<double>();
  const std::vector<double> bias = parameter(*m.gpt, "pe.qk_proj.bias").to_vector<double>();
  std::vector<std::vector<double>> both(size_t(T), std::vector<double>(size_t(2 * C)));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t o = 0; o < 2 * C; ++o) {
      double s = bias[size_t(o)];
      for (int64_t i = 0; i < C; ++i) s += w[size_t(o * C + i)] * ev[size_t(t * C + i)];
      both[size_t(t)][size_t(o)] = s;
    }
  // q, k of layer 0: c_attn(LayerNorm(wte[token])) with the fresh LayerNorm (weight 1, bias 0).
  const std::vector<double> wte = parameter(*m.gpt, "wte.weight").to_vector<double>();
  const std::vector<double> wq = parameter(*m.gpt, "h.0.attn.c_attn.weight").to_vector<double>();
  const std::vector<double> bq = parameter(*m.gpt, "h.0.attn.c_attn.bias").to_vector<double>();
  const std::vector<int64_t> ids = tokens.to_vector<int64_t>();
  std::vector<std::vector<double>> qkv(size_t(B * T), std::vector<double>(size_t(3 * C)));
  for (int64_t n = 0; n < B * T; ++n) {
    const std::vector<double> x = slice(wte, size_t(ids[size_t(n)] * C), size_t(C));
    double mean = 0, var = 0;
    for (double v : x) mean += v / double(C);
    for (double v : x) var += (v - mean) * (v - mean) / double(C);
    for (int64_t o = 0; o < 3 * C; ++o) {
      double s = bq[size_t(o)];
      for (int64_t i = 0; i < C; ++i) s += wq[size_t(o * C + i)] * (x[size_t(i)] - mean) / std::sqrt(var + 1e-5);
      qkv[size_t(n)][size_t(o)] = s;
    }
  }
  for (int64_t h = 0; h < H; ++h) {
    CAPTURE(h);
    std::vector<std::vector<double>> pk(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) pk[size_t(t)] = slice(both[size_t(t)], size_t(C + h * d), size_t(d));
    double position_spread = 0, position_mean = 0, content_spread = 0;
    for (int64_t i = 1; i < T; ++i) {
      const auto [std, mean] = naive_row(slice(both[size_t(i)], size_t(h * d), size_t(d)), pk, i, alpha * scale);
      position_spread += std / double(T - 1);
      position_mean += std::abs(mean) / double(T - 1);
      for (int64_t b = 0; b < B; ++b) {
        std::vector<std::vector<double>> k(static_cast<size_t>(T));
        for (int64_t t = 0; t < T; ++t) k[size_t(t)] = slice(qkv[size_t(b * T + t)], size_t(C + h * d), size_t(d));
        content_spread += naive_row(slice(qkv[size_t(b * T + i)], size_t(h * d), size_t(d)), k, i, scale).first /
                          double((T - 1) * B);
      }
    }
    const seqpe::HeadSignal& got = signal.layers[0][size_t(h)];
    CHECK(position_spread > 1e-3);  // a non-trivial case
    CHECK(got.position_spread == doctest::Approx(position_spread).epsilon(1e-10));
    CHECK(got.position_mean == doctest::Approx(position_mean).epsilon(1e-10));
    CHECK(got.content_spread == doctest::Approx(content_spread).epsilon(1e-10));
  }
  const nlohmann::json json = seqpe::position_signal_to_json(signal);
  CHECK(json.at("position_spread").at(0).at(1).get<double>() == signal.layers[0][1].position_spread);
  CHECK(json.at("mean").at("content_spread").get<double>() ==
        doctest::Approx((signal.layers[0][0].content_spread + signal.layers[0][1].content_spread) / 2));
}
