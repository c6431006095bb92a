// Tests of the CPU attention kernels with bf16 tile products (ops/cpu/attention_bf16.cpp), on every
// bf16 kernel this CPU has (AMX, AVX512-BF16, the fp32 fallback): forward and gradients (q, k, v, the
// score bias) against an f64 reference within the error that bf16 operands with f32 sums allow,
// causal and not, lengths and head sizes off the tiles and the GEMM blocks, Tq below and above Tk,
// dropout, ALiBi, key masks, a score bias per head or shared, operands laid out (B, T, H, D); outputs
// poisoned with NaN first; results independent of the thread count; and the op choosing these
// kernels in bf16 precision, for its backward too.
//
//   B = batch, H = heads, Tq / Tk = query / key lengths, Dk = query/key head size, Dv = value head size,
//   P = position blocks of the score bias
//
// The bound. Rounding an f32 to bf16 (8 significant bits, nearest) moves it by at most u = 2^-9 of
// itself, so a product of two rounded operands is off by at most 2u of |a·b| (to first order), and a
// tile product by 2u · Σ|a·b|; the f32 sums add ~2^-24 per term, 2^-15 of that. Carried through the
// attention to first order, with e_ij = 2u · scale · Σ_d |q_id k_jd| the error of score s_ij and
// ē_i = Σ_j P_ij e_ij (the softmax moves P_ij by P_ij (Δs_ij − Σ_l P_il Δs_il)):
//   out_id   Σ_j P̃_ij |v_jd| (e_ij + ē_i + 2u)                (P̃ and v rounded: 2u)
//   dS_ij    scale · P_ij ((e_ij + ē_i) |dP_ij − δ_i| + g_ij + Σ_d |dO_id| err(out_id))
//            with g_ij = 2u · M_ij/(1 − p) · Σ_d |dO_id v_jd|   (dP = dO·Vᵀ rounded; δ = dO·O from out)
//   dV_jd    Σ_i P̃_ij |dO_id| (e_ij + ē_i + 2u)
//   dK_jd    Σ_i (err(dS_ij) + 2u |dS_ij|) |q_id|,  dQ_id  Σ_j (err(dS_ij) + 2u |dS_ij|) |k_jd|
//   dbias_ij Σ over the block's sequences of err(dS_ij) / scale
// Each element must lie within twice its bound plus 1e-6 of its tensor's largest value: the factor
// covers the second-order terms (e_ij reaches a few percent: e^Δ − 1 exceeds Δ by Δ/2 of itself) and
// the 1e-6 the f32 arithmetic (sums, exp) that the bound leaves out.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "ops/attention.h"
#include "ops/cpu/attention.h"
#include "ops/cpu/bf16_kernel.h"
#include "ops/precision.h"

using engine::Dtype;
using engine::Tensor;
using ops::cpu::Bf16Kernel;
using ops::cpu::RowLayout;

namespace {

constexpr double kUnitRoundoff = 1.0 / 512;  // u = 2^-9: bf16's relative rounding error

enum class ScoreBias { none, per_head, shared };  // shared: one (Tq, Tk) plane for every head

struct Case {
  int64_t B, H, Tq, Tk, Dk, Dv;
  bool causal = false;
  bool token_major = false;  // every operand laid out (B, T, H, D), as a linear layer writes them
  ScoreBias score_bias = ScoreBias::none;
  int64_t blocks = 1;  // P: sequences b and b + P share a bias block
  double dropout = 0.0;
  bool alibi_and_key_mask = false;
};

std::string case_name(const Case& c) {
  return "B=" + std::to_string(c.B) + " H=" + std::to_string(c.H) + " Tq=" + std::to_string(c.Tq) +
         " Tk=" + std::to_string(c.Tk) + " Dk=" + std::to_string(c.Dk) + " Dv=" + std::to_string(c.Dv) +
         (c.causal ? " causal" : "") + (c.token_major ? " (B,T,H,D)" : "") +
         (c.score_bias == ScoreBias::per_head ? " bias per head" : c.score_bias == ScoreBias::shared ? " shared bias" : "") +
         " P=" + std::to_string(c.blocks) + (c.dropout > 0 ? " dropout=" + std::to_string(c.dropout) : "") +
         (c.alibi_and_key_mask ? " alibi key_mask" : "");
}

// Element (b, h, t, d) of an operand laid out as `rows`.
size_t at(const RowLayout& rows, int64_t b, int64_t h, int64_t t, int64_t d) {
  return size_t(b * rows.batch + h * rows.head + t * rows.row + d);
}

// A case's inputs, as the kernels read them.
struct Problem {
  Case c;
  ops::cpu::AttentionSizes sizes;
  ops::cpu::AttentionLayouts layouts;
  std::vector<float> q, k, v, dout;  // laid out as `layouts` says
  std::vector<float> score_bias;     // (P, Hb, Tq, Tk), or empty
  std::vector<double> slopes;        // (H), or empty
  std::vector<int32_t> keep;         // (B, Tk), or empty

  int64_t bias_planes() const { return c.score_bias == ScoreBias::per_head ? c.H : 1; }
  double scale() const { return 1.0 / std::sqrt(double(c.Dk)); }
  // The kernels' bias; bias_grad (P, H, Tq, Tk) zeros, or null.
  ops::cpu::AttentionBias bias(bool bf16_products, float* bias_grad) const {
    ops::cpu::AttentionBias bias;
    bias.scale = scale();
    bias.causal = c.causal;
    bias.alibi_slopes = slopes.empty() ? nullptr : slopes.data();
    bias.key_keep = keep.empty() ? nullptr : keep.data();
    bias.dropout = {c.dropout, 7, 3};
    if (!score_bias.empty()) {
      bias.score_bias = score_bias.data();
      bias.score_bias_blocks = c.blocks;
      bias.score_bias_per_head = c.score_bias == ScoreBias::per_head;
      bias.score_bias_grad = bias_grad;
    }
    bias.bf16_products = bf16_products;
    return bias;
  }
};

Problem make_problem(const Case& c, uint64_t seed) {
  engine::Generator gen(seed);
  Problem p;
  p.c = c;
  p.sizes = {c.B, c.H, c.Tq, c.Tk, c.Dk, c.Dv};
  auto layout = [&](int64_t T, int64_t D) {
    return c.token_major ? RowLayout{T * c.H * D, D, c.H * D} : ops::cpu::dense_rows(c.H, T, D);
  };
  const RowLayout q = layout(c.Tq, c.Dk), k = layout(c.Tk, c.Dk), v = layout(c.Tk, c.Dv), out = layout(c.Tq, c.Dv);
  p.layouts = {q, k, v, out, out, q, k, v};
  auto random = [&](int64_t count) { return Tensor::randn({count}, gen).to_vector<float>(); };
  p.q = random(c.B * c.H * c.Tq * c.Dk);
  p.k = random(c.B * c.H * c.Tk * c.Dk);
  p.v = random(c.B * c.H * c.Tk * c.Dv);
  p.dout = random(c.B * c.H * c.Tq * c.Dv);
  if (c.score_bias != ScoreBias::none) p.score_bias = random(c.blocks * p.bias_planes() * c.Tq * c.Tk);
  if (c.alibi_and_key_mask) {
    for (int64_t h = 0; h < c.H; ++h) p.slopes.push_back(std::pow(2.0, -double(h + 2)));
    p.keep.assign(size_t(c.B * c.Tk), 1);
    for (int64_t j = 0; j < c.Tk; ++j) p.keep[size_t(j)] = j % 5 != 1;  // batch 0 loses a fifth of its keys
    std::fill_n(p.keep.end() - c.Tk, c.Tk, 0);                          // the last batch sees no key
  }
  return p;
}

// The kernels' results, in the layouts' order (dbias dense).
struct Results {
  std::vector<float> out, dq, dk, dv, dbias;
};

// Forward and backward on the kernels, every output filled with NaN first (the bias gradient starts at
// zero: the kernels add to it).
Results run_kernels(const Problem& p, bool bf16_products) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Case& c = p.c;
  Results r;
  r.out.assign(size_t(c.B * c.H * c.Tq * c.Dv), nan);
  r.dq.assign(p.q.size(), nan);
  r.dk.assign(p.k.size(), nan);
  r.dv.assign(p.v.size(), nan);
  if (!p.score_bias.empty()) r.dbias.assign(size_t(c.blocks * c.H * c.Tq * c.Tk), 0.f);
  std::vector<float> lse(size_t(c.B * c.H * c.Tq), nan);
  const ops::cpu::AttentionBias bias = p.bias(bf16_products, r.dbias.empty() ? nullptr : r.dbias.data());
  ops::cpu::attention_forward<float>(r.out.data(), lse.data(), p.q.data(), p.k.data(), p.v.data(), p.sizes, bias,
                                     p.layouts);
  ops::cpu::attention_backward<float>(r.dq.data(), r.dk.data(), r.dv.data(), p.dout.data(), p.q.data(), p.k.data(),
                                      p.v.data(), r.out.data(), lse.data(), p.sizes, bias, p.layouts);
  return r;
}

// A tensor of the f64 reference and each element's error bound, in the layout of the kernels' result.
struct Expected {
  std::vector<double> value, bound;
  explicit Expected(size_t size) : value(size, 0.0), bound(size, 0.0) {}
};

struct Reference {
  Expected out, dq, dk, dv, dbias;
};

// The full score matrix, softmax and products in f64 from the f32 inputs, row by row, and the
// first-order bounds of the header comment beside each value.
Reference reference_attention(const Problem& p) {
  const Case& c = p.c;
  const ops::cpu::AttentionLayouts& L = p.layouts;
  const double u = kUnitRoundoff, scale = p.scale();
  const ops::cpu::AttentionDropout dropout{c.dropout, 7, 3};
  Reference r{Expected(size_t(c.B * c.H * c.Tq * c.Dv)), Expected(p.q.size()), Expected(p.k.size()),
              Expected(p.v.size()), Expected(size_t(c.blocks * c.H * c.Tq * c.Tk))};
  std::vector<double> s(size_t(c.Tk)), e(size_t(c.Tk)), prob(size_t(c.Tk)), drop(size_t(c.Tk)), out(size_t(c.Dv)),
      out_bound(size_t(c.Dv));
  std::vector<bool> visible(size_t(c.Tk));
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.H; ++h)
      for (int64_t i = 0; i < c.Tq; ++i) {
        const int64_t position = i + c.Tk - c.Tq, block = b % c.blocks;
        const int64_t plane = block * p.bias_planes() + (c.score_bias == ScoreBias::per_head ? h : 0);
        double max_score = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < c.Tk; ++j) {
          visible[size_t(j)] = !(c.causal && j > position) && (p.keep.empty() || p.keep[size_t(b * c.Tk + j)] != 0);
          if (!visible[size_t(j)]) continue;
          double dot = 0, magnitude = 0;
          for (int64_t d = 0; d < c.Dk; ++d) {
            const double product = double(p.q[at(L.q, b, h, i, d)]) * double(p.k[at(L.k, b, h, j, d)]);
            dot += product;
            magnitude += std::abs(product);
          }
          s[size_t(j)] = scale * dot;
          if (!p.slopes.empty()) s[size_t(j)] += p.slopes[size_t(h)] * double(j - position);
          if (!p.score_bias.empty()) s[size_t(j)] += p.score_bias[size_t((plane * c.Tq + i) * c.Tk + j)];
          e[size_t(j)] = 2 * u * scale * magnitude;
          max_score = std::max(max_score, s[size_t(j)]);
        }
        if (max_score == -std::numeric_limits<double>::infinity()) continue;  // no visible key: zeros
        double sum = 0;
        for (int64_t j = 0; j < c.Tk; ++j) prob[size_t(j)] = visible[size_t(j)] ? std::exp(s[size_t(j)] - max_score) : 0;
        for (int64_t j = 0; j < c.Tk; ++j) sum += prob[size_t(j)];
        double mean_error = 0;  // ē_i
        for (int64_t j = 0; j < c.Tk; ++j) {
          prob[size_t(j)] /= sum;
          mean_error += prob[size_t(j)] * e[size_t(j)];
          drop[size_t(j)] = c.dropout == 0 ? 1.0
                            : ops::cpu::attention_dropout_keeps(dropout, uint64_t(((b * c.H + h) * c.Tq + i) * c.Tk + j))
                                ? 1.0 / (1.0 - c.dropout)
                                : 0.0;
        }
        // out, and δ = dO·out with its error.
        std::fill(out.begin(), out.end(), 0.0);
        std::fill(out_bound.begin(), out_bound.end(), 0.0);
        for (int64_t j = 0; j < c.Tk; ++j) {
          const double dropped = prob[size_t(j)] * drop[size_t(j)];
          for (int64_t d = 0; d < c.Dv; ++d) {
            const double value = p.v[at(L.v, b, h, j, d)];
            out[size_t(d)] += dropped * value;
            out_bound[size_t(d)] += dropped * std::abs(value) * (e[size_t(j)] + mean_error + 2 * u);
          }
        }
        double delta = 0, delta_bound = 0;
        for (int64_t d = 0; d < c.Dv; ++d) {
          const double grad = p.dout[at(L.dout, b, h, i, d)];
          r.out.value[at(L.out, b, h, i, d)] = out[size_t(d)];
          r.out.bound[at(L.out, b, h, i, d)] = out_bound[size_t(d)];
          delta += grad * out[size_t(d)];
          delta_bound += std::abs(grad) * out_bound[size_t(d)];
        }
        for (int64_t j = 0; j < c.Tk; ++j) {
          if (!visible[size_t(j)]) continue;
          const double pj = prob[size_t(j)], fj = drop[size_t(j)], ej = e[size_t(j)] + mean_error;
          double dp = 0, dp_magnitude = 0;
          for (int64_t d = 0; d < c.Dv; ++d) {
            const double grad = p.dout[at(L.dout, b, h, i, d)], value = p.v[at(L.v, b, h, j, d)];
            dp += fj * grad * value;
            dp_magnitude += fj * std::abs(grad * value);
            r.dv.value[at(L.dv, b, h, j, d)] += pj * fj * grad;
            r.dv.bound[at(L.dv, b, h, j, d)] += pj * fj * std::abs(grad) * (ej + 2 * u);
          }
          const double ds = scale * pj * (dp - delta);
          const double ds_bound = scale * pj * (ej * std::abs(dp - delta) + 2 * u * dp_magnitude + delta_bound);
          const double product_bound = ds_bound + 2 * u * std::abs(ds);  // dS rounded in dK, dQ
          for (int64_t d = 0; d < c.Dk; ++d) {
            const double qd = p.q[at(L.q, b, h, i, d)], kd = p.k[at(L.k, b, h, j, d)];
            r.dq.value[at(L.dq, b, h, i, d)] += ds * kd;
            r.dq.bound[at(L.dq, b, h, i, d)] += product_bound * std::abs(kd);
            r.dk.value[at(L.dk, b, h, j, d)] += ds * qd;
            r.dk.bound[at(L.dk, b, h, j, d)] += product_bound * std::abs(qd);
          }
          const size_t bias_element = size_t(((block * c.H + h) * c.Tq + i) * c.Tk + j);
          r.dbias.value[bias_element] += ds / scale;
          r.dbias.bound[bias_element] += ds_bound / scale;
        }
      }
  return r;
}

// Every element within twice its bound plus 1e-6 of the tensor's largest value (the header comment
// says why); NaN fails. Returns the largest error over that allowance.
double worst_error_over_allowance(const std::vector<float>& got, const Expected& expected) {
  REQUIRE(got.size() == expected.value.size());
  double largest = 0;
  for (double value : expected.value) largest = std::max(largest, std::abs(value));
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double error = std::abs(double(got[i]) - expected.value[i]);
    const double allowance = 2 * expected.bound[i] + 1e-6 * largest + 1e-30;
    worst = std::max(worst, std::isfinite(got[i]) ? error / allowance : HUGE_VAL);
  }
  return worst;
}

// Forces each bf16 kernel this CPU has for the body, then restores the one in use before.
template <typename Body>
void for_each_kernel(Body body) {
  const Bf16Kernel before = ops::cpu::bf16_kernel();
  for (Bf16Kernel kernel : {Bf16Kernel::amx, Bf16Kernel::avx512_bf16, Bf16Kernel::fp32}) {
    if (!ops::cpu::bf16_kernel_available(kernel)) continue;
    ops::cpu::set_bf16_kernel(kernel);
    CAPTURE(ops::cpu::bf16_kernel_name(kernel));
    body();
  }
  ops::cpu::set_bf16_kernel(before);
}

// The root-mean-square difference between two tensors over the root-mean-square of the second.
double relative_rms(const std::vector<float>& got, const std::vector<double>& want) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    diff += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    norm += want[i] * want[i];
  }
  return std::sqrt(diff / norm);
}

}  // namespace

TEST_CASE("attention with bf16 tile products matches the f64 reference within bf16's bound, on every kernel") {
  // Lengths across the 128-query and 256-key tiles and the GEMM kernels' blocks (12 and 32 rows,
  // depth chunks of 32), head sizes off them.
  const std::vector<Case> cases = {
      {2, 2, 130, 130, 16, 16, true},                                               // causal, two query tiles
      {1, 3, 100, 300, 20, 40, false, true, ScoreBias::none, 1, 0.1},              // Tq < Tk, two key tiles, dropout
      {2, 1, 200, 37, 33, 8, false, true, ScoreBias::none, 1, 0.0, true},          // Tq > Tk, ALiBi, key mask
      {2, 2, 200, 150, 24, 16, true},                                               // causal Tq > Tk: 50 see no key
      {1, 2, 300, 300, 16, 8, true, false, ScoreBias::per_head},                   // causal over two key tiles
      {4, 2, 70, 70, 12, 5, true, true, ScoreBias::shared, 2, 0.2},                // shared bias, 2 blocks, dropout
  };
  const int previous_threads = omp_get_max_threads();
  omp_set_num_threads(2);
  for (const Case& c : cases) {
    CAPTURE(case_name(c));
    const Problem p = make_problem(c, 11 + uint64_t(c.Tq + c.Tk));
    const Reference expected = reference_attention(p);
    for_each_kernel([&] {
      const Results got = run_kernels(p, true);
      CHECK(worst_error_over_allowance(got.out, expected.out) <= 1.0);
      CHECK(worst_error_over_allowance(got.dq, expected.dq) <= 1.0);
      CHECK(worst_error_over_allowance(got.dk, expected.dk) <= 1.0);
      CHECK(worst_error_over_allowance(got.dv, expected.dv) <= 1.0);
      if (!p.score_bias.empty()) CHECK(worst_error_over_allowance(got.dbias, expected.dbias) <= 1.0);
    });
  }
  omp_set_num_threads(previous_threads);
}

TEST_CASE("attention's bf16 products round their operands: the reference is missed by bf16's error, not f32's") {
  // Guards the bound above, which the f32 kernels meet too: here the bf16 kernels' error must be that
  // of 8-bit operands (~1e-3 of the norm), the f32 kernels' that of f32 (~1e-6).
  const Problem p = make_problem({2, 2, 150, 150, 32, 32, true, false, ScoreBias::per_head}, 5);
  const Reference expected = reference_attention(p);
  const Results f32 = run_kernels(p, false);
  CHECK(relative_rms(f32.out, expected.out.value) < 1e-5);
  CHECK(relative_rms(f32.dq, expected.dq.value) < 1e-5);
  for_each_kernel([&] {
    const Results bf16 = run_kernels(p, true);
    for (const auto& [got, want] : {std::pair{&bf16.out, &expected.out}, std::pair{&bf16.dq, &expected.dq},
                                    std::pair{&bf16.dk, &expected.dk}, std::pair{&bf16.dv, &expected.dv}}) {
      const double error = relative_rms(*got, want->value);
      CHECK((error > 1e-4 && error < 2e-2));
    }
  });
}

TEST_CASE("attention with bf16 tile products gives the same bits on 1 and 3 threads") {
  // A bias gradient (its items are position blocks) and one without (one sequence per item).
  for (const Case& c : {Case{3, 2, 150, 150, 16, 8, true, true, ScoreBias::shared, 1, 0.2},
                        Case{2, 3, 140, 270, 8, 12, false}}) {
    CAPTURE(case_name(c));
    const Problem p = make_problem(c, 9);
    for_each_kernel([&] {
      const int previous = omp_get_max_threads();
      omp_set_num_threads(1);
      const Results one = run_kernels(p, true);
      omp_set_num_threads(3);
      const Results three = run_kernels(p, true);
      omp_set_num_threads(previous);
      CHECK(one.out == three.out);
      CHECK(one.dq == three.dq);
      CHECK(one.dk == three.dk);
      CHECK(one.dv == three.dv);
      CHECK(one.dbias == three.dbias);
    });
  }
}

TEST_CASE("ops::attention runs the bf16 kernels in bf16 precision, and its backward in its forward's precision") {
  const Case c{2, 2, 70, 90, 16, 16, true};
  const Problem p = make_problem(c, 21);
  const Results kernels = run_kernels(p, true);
  const engine::Shape q_shape{c.B, c.H, c.Tq, c.Dk}, kv_shape{c.B, c.H, c.Tk, c.Dk};
  const Tensor q = Tensor::from_vector(std::vector<double>(p.q.begin(), p.q.end()), q_shape).requires_grad_();
  const Tensor k = Tensor::from_vector(std::vector<double>(p.k.begin(), p.k.end()), kv_shape).requires_grad_();
  const Tensor v = Tensor::from_vector(std::vector<double>(p.v.begin(), p.v.end()), kv_shape).requires_grad_();
  ops::AttentionOptions options;
  options.causal = true;
  Tensor out;
  {
    const ops::PrecisionScope bf16(ops::Precision::bf16);
    out = ops::attention(q, k, v, options);
  }
  out.backward(Tensor::from_vector(std::vector<double>(p.dout.begin(), p.dout.end()), {c.B, c.H, c.Tq, c.Dv}));
  CHECK(out.to_vector<float>() == kernels.out);
  CHECK(q.grad().to_vector<float>() == kernels.dq);
  CHECK(k.grad().to_vector<float>() == kernels.dk);
  CHECK(v.grad().to_vector<float>() == kernels.dv);
  // In fp32 the op runs the f32 kernels: other bits.
  CHECK(ops::attention(q, k, v, options).to_vector<float>() != kernels.out);
}
