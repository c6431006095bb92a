// Kernel 0 of attention (ops/reference/attention.h): per (batch, head, query row), the scores of
// every key, their softmax, then the products, in double.
#include "ops/reference/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/error.h"
#include "ops/cpu/attention.h"

namespace ops::reference {

namespace {

// The inputs as dense arrays in double, with the sizes and options the formulas read.
struct Problem {
  int64_t B, H, Tq, Tk, Dk, Dv;
  double scale;
  bool causal;
  std::vector<double> q, k, v;  // (B, H, Tq, Dk), (B, H, Tk, Dk), (B, H, Tk, Dv)
  std::vector<double> slopes;   // (H), empty without ALiBi
  std::vector<double> keep;     // (B, Tk), empty without a key mask
  cpu::AttentionDropout dropout;

  double q_at(int64_t bh, int64_t i, int64_t d) const { return q[size_t((bh * Tq + i) * Dk + d)]; }
  double k_at(int64_t bh, int64_t j, int64_t d) const { return k[size_t((bh * Tk + j) * Dk + d)]; }
  double v_at(int64_t bh, int64_t j, int64_t d) const { return v[size_t((bh * Tk + j) * Dv + d)]; }
};

Problem problem_of(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options) {
  ENGINE_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && k.size(0) == q.size(0) && k.size(1) == q.size(1) &&
                   k.size(3) == q.size(3) && v.size(0) == q.size(0) && v.size(1) == q.size(1) &&
                   v.size(2) == k.size(2),
               "reference::attention: q ", q.describe(), ", k ", k.describe(), " and v ", v.describe(),
               " must be (B, H, Tq, Dk), (B, H, Tk, Dk) and (B, H, Tk, Dv)");
  ENGINE_CHECK(!options.score_bias.defined(), "reference::attention: no score bias here; its oracle is the widened ",
               "attention it replaces");
  Problem p{q.size(0), q.size(1), q.size(2), k.size(2), q.size(3), v.size(3), options.scale, options.causal,
            q.to_vector<double>(), k.to_vector<double>(), v.to_vector<double>(), {}, {}, {}};
  if (p.scale == 0.0) p.scale = 1.0 / std::sqrt(double(p.Dk));
  if (options.alibi_slopes.defined()) p.slopes = options.alibi_slopes.to_vector<double>();
  if (options.key_mask.defined()) p.keep = options.key_mask.to_vector<double>();
  if (options.dropout_p > 0.0) {
    ENGINE_CHECK(options.dropout_gen != nullptr, "reference::attention: dropout_p > 0 needs a dropout_gen");
    p.dropout = {options.dropout_p, options.dropout_gen->seed(), options.dropout_gen->offset()};
  }
  return p;
}

// Row i of head bh = b·H + h: the probabilities P_ij (all zero when no key is visible) and the
// dropout factors f_ij.
struct Row {
  std::vector<double> P, f;
};

Row probabilities(const Problem& p, int64_t bh, int64_t i) {
  const int64_t b = bh / p.H, h = bh % p.H, position = i + p.Tk - p.Tq;
  Row row{std::vector<double>(size_t(p.Tk), 0.0), std::vector<double>(size_t(p.Tk), 1.0)};
  std::vector<bool> visible(size_t(p.Tk));
  double max_score = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < p.Tk; ++j) {
    visible[size_t(j)] = !(p.causal && j > position) && (p.keep.empty() || p.keep[size_t(b * p.Tk + j)] != 0);
    if (!visible[size_t(j)]) continue;
    double s = 0.0;
    for (int64_t d = 0; d < p.Dk; ++d) s += p.q_at(bh, i, d) * p.k_at(bh, j, d);
    s *= p.scale;
    if (!p.slopes.empty()) s += p.slopes[size_t(h)] * double(j - position);
    row.P[size_t(j)] = s;
    max_score = std::max(max_score, s);
  }
  double sum = 0.0;
  for (int64_t j = 0; j < p.Tk; ++j)
    if (visible[size_t(j)]) sum += (row.P[size_t(j)] = std::exp(row.P[size_t(j)] - max_score));
  for (int64_t j = 0; j < p.Tk; ++j) row.P[size_t(j)] = sum == 0.0 ? 0.0 : row.P[size_t(j)] / sum;
  if (p.dropout.p > 0.0)
    for (int64_t j = 0; j < p.Tk; ++j) {
      const uint64_t element = uint64_t((bh * p.Tq + i) * p.Tk + j);
      const bool kept = cpu::attention_dropout_keeps(p.dropout, element);
      row.f[size_t(j)] = kept ? cpu::attention_dropout_scale(p.dropout) : 0.0;
    }
  return row;
}

}  // namespace

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options) {
  const Problem p = problem_of(q, k, v, options);
  std::vector<double> out(size_t(p.B * p.H * p.Tq * p.Dv), 0.0);
  for (int64_t bh = 0; bh < p.B * p.H; ++bh)
    for (int64_t i = 0; i < p.Tq; ++i) {
      const Row row = probabilities(p, bh, i);
      double* out_i = out.data() + (bh * p.Tq + i) * p.Dv;
      for (int64_t j = 0; j < p.Tk; ++j)
        for (int64_t d = 0; d < p.Dv; ++d) out_i[d] += row.P[size_t(j)] * row.f[size_t(j)] * p.v_at(bh, j, d);
    }
  return Tensor::from_vector(out, {p.B, p.H, p.Tq, p.Dv}, engine::Dtype::f64);
}

AttentionGradients attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                      const AttentionOptions& options, const Tensor& dout) {
  const Problem p = problem_of(q, k, v, options);
  ENGINE_CHECK(dout.shape() == engine::Shape({p.B, p.H, p.Tq, p.Dv}), "reference::attention_backward: dout ",
               dout.describe(), " must be the output's shape (B, H, Tq, Dv)");
  const std::vector<double> dO = dout.to_vector<double>();
  std::vector<double> dq(p.q.size(), 0.0), dk(p.k.size(), 0.0), dv(p.v.size(), 0.0);
  for (int64_t bh = 0; bh < p.B * p.H; ++bh)
    for (int64_t i = 0; i < p.Tq; ++i) {
      const Row row = probabilities(p, bh, i);
      const double* dO_i = dO.data() + (bh * p.Tq + i) * p.Dv;
      std::vector<double> dP(size_t(p.Tk), 0.0);
      double delta = 0.0;  // δ_i = Σ_j P_ij·dP_ij
      for (int64_t j = 0; j < p.Tk; ++j) {
        for (int64_t d = 0; d < p.Dv; ++d) {
          dP[size_t(j)] += row.f[size_t(j)] * dO_i[d] * p.v_at(bh, j, d);
          dv[size_t((bh * p.Tk + j) * p.Dv + d)] += row.P[size_t(j)] * row.f[size_t(j)] * dO_i[d];
        }
        delta += row.P[size_t(j)] * dP[size_t(j)];
      }
      for (int64_t j = 0; j < p.Tk; ++j) {
        const double dS = row.P[size_t(j)] * (dP[size_t(j)] - delta);
        for (int64_t d = 0; d < p.Dk; ++d) {
          dq[size_t((bh * p.Tq + i) * p.Dk + d)] += p.scale * dS * p.k_at(bh, j, d);
          dk[size_t((bh * p.Tk + j) * p.Dk + d)] += p.scale * dS * p.q_at(bh, i, d);
        }
      }
    }
  const engine::Dtype f64 = engine::Dtype::f64;
  return {Tensor::from_vector(dq, q.shape(), f64), Tensor::from_vector(dk, k.shape(), f64),
          Tensor::from_vector(dv, v.shape(), f64)};
}

}  // namespace ops::reference
