// The position-signal diagnostic (see position_signal.h): q and k of every layer are read through
// SeqPe's q/k observer during one evaluation forward, pq and pk from the PE's prepared state, and
// the spreads computed on the host in double.
#include "seqpe/position_signal.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/error.h"

namespace seqpe {

namespace {

// Scores of one query row against keys 0..i: their population std and mean.
struct RowStats {
  double std = 0, mean = 0;
};

// a: the query row (d values), keys: T rows of d values; scale multiplies every dot product.
RowStats row_stats(const double* a, const double* keys, int64_t i, int64_t d, double scale, std::vector<double>& s) {
  s.resize(size_t(i + 1));
  double sum = 0;
  for (int64_t j = 0; j <= i; ++j) {
    double dot = 0;
    for (int64_t c = 0; c < d; ++c) dot += a[c] * keys[j * d + c];
    s[size_t(j)] = scale * dot;
    sum += s[size_t(j)];
  }
  const double mean = sum / double(i + 1);
  double squares = 0;
  for (int64_t j = 0; j <= i; ++j) squares += (s[size_t(j)] - mean) * (s[size_t(j)] - mean);
  return {std::sqrt(squares / double(i + 1)), mean};
}

// x: (B', H', T, d) -> host doubles in that order.
std::vector<double> host(const engine::Tensor& x) { return x.contiguous().to_vector<double>(); }

// One layer: q, k (B, H, T, d); pq, pk (1, H', T, d) with H' = H or 1 (shared by the heads).
std::vector<HeadSignal> layer_signal(const engine::Tensor& q, const engine::Tensor& k, const engine::Tensor& pq,
                                     const engine::Tensor& pk, double alpha) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), d = q.size(3), Hp = pq.size(1);
  ENGINE_CHECK(pq.size(0) == 1 && pq.size(2) == T && pq.size(3) == d && (Hp == H || Hp == 1),
               "position signal: position PEs ", pq.describe(), " do not match q ", q.describe());
  const std::vector<double> qv = host(q), kv = host(k), pqv = host(pq), pkv = host(pk);
  const double scale = 1.0 / std::sqrt(double(d));
  std::vector<HeadSignal> heads(static_cast<size_t>(H));
  std::vector<double> scratch;
  for (int64_t h = 0; h < H; ++h) {
    HeadSignal& out = heads[size_t(h)];
    const int64_t hp = Hp == 1 ? 0 : h;
    const double* pq_h = pqv.data() + hp * T * d;
    const double* pk_h = pkv.data() + hp * T * d;
    for (int64_t i = 1; i < T; ++i) {
      const RowStats position = row_stats(pq_h + i * d, pk_h, i, d, alpha * scale, scratch);
      out.position_spread += position.std;
      out.position_mean += std::abs(position.mean);
      for (int64_t b = 0; b < B; ++b) {
        const double* q_bh = qv.data() + (b * H + h) * T * d;
        const double* k_bh = kv.data() + (b * H + h) * T * d;
        out.content_spread += row_stats(q_bh + i * d, k_bh, i, d, scale, scratch).std;
      }
    }
    const double rows = double(T - 1);
    out.position_spread /= rows;
    out.position_mean /= rows;
    out.content_spread /= rows * double(B);
  }
  return heads;
}

}  // namespace

HeadSignal PositionSignal::mean() const {
  HeadSignal total;
  int64_t count = 0;
  for (const auto& layer : layers)
    for (const HeadSignal& head : layer) {
      total.position_spread += head.position_spread;
      total.content_spread += head.content_spread;
      total.position_mean += head.position_mean;
      ++count;
    }
  if (count > 0) {
    total.position_spread /= double(count);
    total.content_spread /= double(count);
    total.position_mean /= double(count);
  }
  return total;
}

PositionSignal measure_position_signal(models::Gpt& model, SeqPe& pe, const engine::Tensor& tokens) {
  ENGINE_CHECK(pe.config().apply == ApplyMethod::attn_scalar, "position signal: needs SeqPE attn_scalar");
  ENGINE_CHECK(tokens.dim() == 2 && tokens.size(1) >= 2, "position signal: tokens must be (B, T) with T >= 2, got ",
               tokens.describe());
  engine::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  PositionSignal signal;
  signal.layers.resize(size_t(model.config().layers));
  pe.set_qk_observer([&](int layer, const engine::Tensor& q, const engine::Tensor& k) {
    engine::Tensor pq, pk;
    pe.position_qk(layer, pq, pk);
    signal.layers.at(size_t(layer)) = layer_signal(q, k, pq, pk, pe.config().scalar_scale);
  });
  engine::Generator unused_dropout(0);
  try {
    model.forward(tokens, unused_dropout);
  } catch (...) {
    pe.set_qk_observer({});
    model.train(was_training);
    throw;
  }
  pe.set_qk_observer({});
  model.train(was_training);
  return signal;
}

nlohmann::json position_signal_to_json(const PositionSignal& signal) {
  nlohmann::json position = nlohmann::json::array(), content = nlohmann::json::array(),
                 mean = nlohmann::json::array();
  for (const auto& layer : signal.layers) {
    nlohmann::json p = nlohmann::json::array(), c = nlohmann::json::array(), m = nlohmann::json::array();
    for (const HeadSignal& head : layer) {
      p.push_back(head.position_spread);
      c.push_back(head.content_spread);
      m.push_back(head.position_mean);
    }
    position.push_back(p);
    content.push_back(c);
    mean.push_back(m);
  }
  const HeadSignal all = signal.mean();
  return {{"position_spread", position},
          {"content_spread", content},
          {"position_mean", mean},
          {"mean",
           {{"position_spread", all.position_spread},
            {"content_spread", all.content_spread},
            {"position_mean", all.position_mean}}}};
}

nlohmann::json position_signal_metrics(models::Gpt& model, SeqPe& pe, const engine::Tensor& tokens) {
  if (pe.config().apply != ApplyMethod::attn_scalar) return nullptr;
  return position_signal_to_json(measure_position_signal(model, pe, tokens));
}

}  // namespace seqpe
