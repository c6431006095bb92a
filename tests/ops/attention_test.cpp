// Tests of ops::attention against its kernel 0 (ops/reference/attention.h), which builds the full
// (Tq × Tk) score matrix in double, forward and all three gradients, over masks, biases, dropout and
// lengths that straddle the kernels' tiles, and at most 16 keys (the few-keys kernel).
//
//   B = batch, H = heads, Tq / Tk = query / key lengths, Dk = query/key head size, Dv = value head size
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/gradcheck.h"
#include "engine/rng.h"
#include "ops/attention.h"
#include "ops/cpu/attention.h"
#include "ops/dropout.h"
#include "ops/reference/attention.h"

using engine::Dtype;
using engine::Tensor;

namespace {

struct Case {
  int64_t B, H, Tq, Tk, Dk, Dv;
  bool causal = false;
  bool alibi = false;
  bool key_mask = false;  // masks some keys, and every key of the last batch (all of its rows see none)
  double scale = 0.0;
  double dropout = 0.0;  // on the probabilities
};

std::string case_name(const Case& c) {
  return "B=" + std::to_string(c.B) + " H=" + std::to_string(c.H) + " Tq=" + std::to_string(c.Tq) +
         " Tk=" + std::to_string(c.Tk) + " Dk=" + std::to_string(c.Dk) + " Dv=" + std::to_string(c.Dv) +
         (c.causal ? " causal" : "") + (c.alibi ? " alibi" : "") + (c.key_mask ? " key_mask" : "") +
         (c.dropout > 0.0 ? " dropout=" + std::to_string(c.dropout) : "");
}

// Inputs and options of a case, in f64; q, k and v require grad.
struct Inputs {
  Tensor q, k, v, dout;
  ops::AttentionOptions options;
  std::shared_ptr<engine::Generator> dropout_gen;  // options.dropout_gen points to it
};

Inputs make_inputs(const Case& c, uint64_t seed) {
  engine::Generator gen(seed);
  Inputs in;
  in.q = Tensor::randn({c.B, c.H, c.Tq, c.Dk}, gen, Dtype::f64).requires_grad_();
  in.k = Tensor::randn({c.B, c.H, c.Tk, c.Dk}, gen, Dtype::f64).requires_grad_();
  in.v = Tensor::randn({c.B, c.H, c.Tk, c.Dv}, gen, Dtype::f64).requires_grad_();
  in.dout = Tensor::randn({c.B, c.H, c.Tq, c.Dv}, gen, Dtype::f64);
  in.options.causal = c.causal;
  in.options.scale = c.scale;
  if (c.alibi) {
    std::vector<double> slopes;
    for (int64_t h = 0; h < c.H; ++h) slopes.push_back(std::pow(2.0, -double(h + 1)));
    in.options.alibi_slopes = Tensor::from_vector(slopes, {c.H}, Dtype::f32);
  }
  if (c.key_mask) {
    // Integer mask; key 0 of batch 0 is masked so that, under a causal mask, query 0 sees nothing.
    std::vector<int64_t> keep(size_t(c.B * c.Tk));
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t j = 0; j < c.Tk; ++j)
        keep[size_t(b * c.Tk + j)] = (b == c.B - 1 || j == 0 || (j + b) % 3 == 1) ? 0 : 7;
    in.options.key_mask = Tensor::from_indices(keep, {c.B, c.Tk}, Dtype::i64);
  }
  in.dropout_gen = std::make_shared<engine::Generator>(seed + 1000);
  in.dropout_gen->reserve(5);  // a nonzero offset, as later in a training run
  in.options.dropout_p = c.dropout;
  in.options.dropout_gen = in.dropout_gen.get();
  return in;
}

struct Result {
  std::vector<double> out, dq, dk, dv;
};

// Kernel 0 of attention (ops/reference/attention.h) on the inputs: the full score matrix, softmax and
// products in double, the backward by the chain rule row by row. It reads the dropout generator
// without advancing it, so it runs before the op, whose mask it then reproduces.
Result reference_attention(const Inputs& in) {
  const ops::reference::AttentionGradients grads =
      ops::reference::attention_backward(in.q, in.k, in.v, in.options, in.dout);
  return {ops::reference::attention(in.q, in.k, in.v, in.options).to_vector<double>(), grads.dq.to_vector<double>(),
          grads.dk.to_vector<double>(), grads.dv.to_vector<double>()};
}

// Element-wise |actual − expected| <= rtol · (|expected| + floor · max|expected| + 1e-6). With floor
// 1e-3 it is relative, except that elements that cancel to nearly zero are judged against 0.1% of
// the tensor's scale; with floor 1 it is relative to the tensor's scale (right for f32 sums, whose
// rounding error follows the magnitude of the terms, not of the result). The 1e-6 absolute term
// covers gradients that are exactly zero (a single visible key), as inputs are of order 1.
void check_close(const std::vector<double>& actual, const std::vector<double>& expected, double rtol,
                 const std::string& what, double floor = 1e-3) {
  REQUIRE(actual.size() == expected.size());
  double scale = 0.0;
  for (double e : expected) scale = std::max(scale, std::abs(e));
  double worst = 0.0;
  size_t worst_index = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    double error = std::abs(actual[i] - expected[i]) / (std::abs(expected[i]) + floor * scale + 1e-6);
    if (std::isnan(error)) error = std::numeric_limits<double>::infinity();
    if (error > worst) worst = error, worst_index = i;
  }
  INFO(what, ": worst relative error ", worst, " at element ", worst_index);
  CHECK(worst <= rtol);
}

// Runs forward and backward in f64 and compares output and gradients with the reference.
void check_against_reference(const Case& c) {
  Inputs in = make_inputs(c, 42 + uint64_t(c.Tq * 131 + c.Tk));
  const Result expected = reference_attention(in);
  Tensor out = ops::attention(in.q, in.k, in.v, in.options);
  CHECK(out.shape() == engine::Shape{c.B, c.H, c.Tq, c.Dv});
  out.backward(in.dout);
  const std::string name = case_name(c);
  check_close(out.to_vector<double>(), expected.out, 1e-6, name + " out");
  check_close(in.q.grad().to_vector<double>(), expected.dq, 1e-6, name + " dq");
  check_close(in.k.grad().to_vector<double>(), expected.dk, 1e-6, name + " dk");
  check_close(in.v.grad().to_vector<double>(), expected.dv, 1e-6, name + " dv");
  if (c.key_mask) {
    // The last batch sees no key at all: exact zeros, not NaN, in its output and gradients.
    const auto last_batch_is_zero = [&](const Tensor& t) {
      for (double value : t.select(0, c.B - 1).to_vector<double>())
        if (value != 0.0) return false;
      return true;
    };
    CHECK(last_batch_is_zero(out));
    CHECK(last_batch_is_zero(in.q.grad()));
    CHECK(last_batch_is_zero(in.k.grad()));
    CHECK(last_batch_is_zero(in.v.grad()));
  }
}

}  // namespace

TEST_CASE("attention forward matches hand-computed values") {
  // One query, two keys, scale 1: scores 0 and log 3, probabilities 1/4 and 3/4.
  Tensor q = Tensor::from_vector({1}, {1, 1, 1, 1}, Dtype::f64);
  Tensor k = Tensor::from_vector({0, std::log(3.0)}, {1, 1, 2, 1}, Dtype::f64);
  Tensor v = Tensor::from_vector({4, 8, -4, 12}, {1, 1, 2, 2}, Dtype::f64);
  ops::AttentionOptions options;
  options.scale = 1.0;
  std::vector<double> out = ops::attention(q, k, v, options).to_vector<double>();
  CHECK(out[0] == doctest::Approx(-2).epsilon(1e-14));
  CHECK(out[1] == doctest::Approx(11).epsilon(1e-14));
  // Causal with Tq = Tk = 2: query 0 sees only key 0.
  Tensor q2 = Tensor::from_vector({1, 1}, {1, 1, 2, 1}, Dtype::f64);
  options.causal = true;
  out = ops::attention(q2, k, v, options).to_vector<double>();
  CHECK(out[0] == 4);
  CHECK(out[1] == 8);
  CHECK(out[2] == doctest::Approx(-2).epsilon(1e-14));
  CHECK(out[3] == doctest::Approx(11).epsilon(1e-14));
  // KV cache: one query at the last position sees both keys.
  out = ops::attention(q, k, v, options).to_vector<double>();
  CHECK(out[0] == doctest::Approx(-2).epsilon(1e-14));
  CHECK(out[1] == doctest::Approx(11).epsilon(1e-14));
}

TEST_CASE("attention matches its kernel 0, forward and gradients, in f64") {
  const std::vector<Case> cases = {
      {1, 1, 1, 1, 4, 4},
      {2, 3, 65, 65, 8, 8},
      {2, 2, 130, 130, 16, 16, true},
      {1, 4, 63, 63, 8, 8, true, true},
      {1, 2, 64, 130, 8, 8, false, true},
      {2, 2, 70, 70, 12, 5, true},             // Dk != Dv
      {2, 2, 5, 130, 8, 8, true},              // KV cache: Tq < Tk
      {1, 1, 1, 65, 8, 6, true, true},         // one new token against a cache
      {1, 2, 70, 65, 8, 8, true},              // Tq > Tk: the first 5 queries see no key
      {3, 2, 65, 65, 8, 8, false, false, true},
      {2, 2, 130, 130, 8, 8, true, true, true, 0.3},
      // At most 16 keys (attention_few_keys.cpp): SeqPE's encoder, its readout's query alone, 16
      // keys exactly, queries that see no key; then 17 keys, tiled again.
      {2, 3, 6, 6, 8, 8, true},
      {3, 2, 1, 6, 8, 5, true, true},
      {2, 2, 16, 16, 12, 7, false, true, true},
      {1, 2, 20, 9, 8, 8, true},
      {2, 2, 17, 17, 8, 8, true, false, true},
  };
  for (const Case& c : cases) {
    CAPTURE(case_name(c));
    check_against_reference(c);
  }
}

TEST_CASE("attention with dropout matches its kernel 0 with the same mask, in f64") {
  const std::vector<Case> cases = {
      {2, 3, 65, 65, 8, 8, false, false, false, 0.0, 0.1},
      {2, 2, 70, 70, 12, 5, true, true, false, 0.0, 0.2},   // causal, ALiBi, Dk != Dv, odd lengths
      {1, 2, 67, 131, 8, 8, false, true, true, 0.0, 0.3},   // key mask, rows that see nothing
      {2, 2, 5, 130, 8, 6, true, false, false, 0.0, 0.5},   // KV cache: Tq < Tk
      {1, 1, 3, 4, 2, 2, true, false, false, 0.0, 1.0},     // everything dropped: zeros
      {3, 2, 6, 6, 8, 8, true, true, true, 0.0, 0.2},       // few keys, with everything else
  };
  for (const Case& c : cases) {
    CAPTURE(case_name(c));
    check_against_reference(c);
  }
}

TEST_CASE("attention dropout's mask is ops::dropout's mask for a (B, H, Tq, Tk) tensor") {
  // Both draw from the same Philox counters: the CUDA kernels, which share attention_dropout_keeps,
  // and the CPU kernel's block-wise draw must all agree with the dropout op.
  const int64_t B = 2, H = 3, Tq = 7, Tk = 16;
  const double p = 0.5;
  engine::Generator gen(77);
  gen.reserve(3);
  const ops::cpu::AttentionDropout dropout{p, gen.seed(), gen.offset()};
  const std::vector<double> dropped =
      ops::dropout(Tensor::ones({B, H, Tq, Tk}, Dtype::f64), p, gen, true).to_vector<double>();
  for (size_t element = 0; element < dropped.size(); ++element) {
    CAPTURE(element);
    REQUIRE((dropped[element] != 0.0) == ops::cpu::attention_dropout_keeps(dropout, element));
  }
  // With q = 0 every visible probability is 1/Tk and v = Tk·e_j picks out column j of P̃ = M/(1 − p):
  // the op's mask, read back exactly (powers of two: no rounding).
  engine::Generator op_gen(77);
  op_gen.reserve(3);
  ops::AttentionOptions options;
  options.dropout_p = p;
  options.dropout_gen = &op_gen;
  Tensor v = Tensor::zeros({B, H, Tk, Tk}, Dtype::f64);
  for (int64_t j = 0; j < Tk; ++j) v.narrow(2, j, 1).narrow(3, j, 1).fill_(double(Tk));
  const std::vector<double> columns =
      ops::attention(Tensor::zeros({B, H, Tq, 4}, Dtype::f64), Tensor::zeros({B, H, Tk, 4}, Dtype::f64), v, options)
          .to_vector<double>();
  CHECK(columns == dropped);
  CHECK(op_gen.offset() == gen.offset());  // both reserved the same counter blocks
}

TEST_CASE("attention with dropout passes gradcheck (the mask is fixed by seed and offset)") {
  struct GradCase {
    int64_t Tq, Tk, Dk, Dv;
    bool causal, alibi;
  };
  for (const GradCase& c : {GradCase{5, 5, 3, 4, false, false}, GradCase{5, 7, 4, 3, true, true},
                            GradCase{3, 3, 2, 2, true, false}}) {
    CAPTURE(c.Tq);
    CAPTURE(c.Tk);
    CAPTURE(c.causal);
    engine::Generator gen(21);
    Tensor q = Tensor::randn({2, 2, c.Tq, c.Dk}, gen, Dtype::f64).requires_grad_();
    Tensor k = Tensor::randn({2, 2, c.Tk, c.Dk}, gen, Dtype::f64).requires_grad_();
    Tensor v = Tensor::randn({2, 2, c.Tk, c.Dv}, gen, Dtype::f64).requires_grad_();
    ops::AttentionOptions options;
    options.causal = c.causal;
    if (c.alibi) options.alibi_slopes = Tensor::from_vector({0.5, 0.25}, {2}, Dtype::f64);
    options.dropout_p = 0.3;
    const auto fn = [&](const std::vector<Tensor>& in) {
      engine::Generator dropout_gen(5);  // the same mask on every evaluation
      ops::AttentionOptions call = options;
      call.dropout_gen = &dropout_gen;
      return ops::attention(in[0], in[1], in[2], call);
    };
    const engine::GradcheckResult result = engine::gradcheck(fn, {q, k, v});
    INFO(result.message);
    CHECK(result.ok);
  }
}

TEST_CASE("attention with dropout_p = 0 is the op without dropout, bit for bit") {
  for (const bool causal : {false, true}) {
    const Case c{2, 2, 70, 70, 8, 8, causal, true, true};
    const auto run = [&](bool with_generator) {
      Inputs in = make_inputs(c, 8);
      in.q = in.q.detach().to(Dtype::f32).requires_grad_();
      in.k = in.k.detach().to(Dtype::f32).requires_grad_();
      in.v = in.v.detach().to(Dtype::f32).requires_grad_();
      if (!with_generator) in.options.dropout_gen = nullptr;
      const uint64_t offset = in.dropout_gen->offset();
      Tensor out = ops::attention(in.q, in.k, in.v, in.options);
      out.backward(in.dout.to(Dtype::f32));
      CHECK(in.dropout_gen->offset() == offset);  // p = 0 draws nothing
      return std::vector<std::vector<float>>{out.to_vector<float>(), in.q.grad().to_vector<float>(),
                                             in.k.grad().to_vector<float>(), in.v.grad().to_vector<float>()};
    };
    CHECK(run(true) == run(false));
  }
}

TEST_CASE("attention dropout keeps 1 − p of the probabilities and draws fresh masks per call") {
  // q = 0 and v = 1 (Dv = 1): out_i = (kept keys of row i) / (Tk · (1 − p)) without a causal mask.
  const int64_t B = 2, H = 2, Tq = 150, Tk = 200;
  const double p = 0.1;
  engine::Generator gen(31);
  ops::AttentionOptions options;
  options.dropout_p = p;
  options.dropout_gen = &gen;
  const Tensor q = Tensor::zeros({B, H, Tq, 8}, Dtype::f64), k = Tensor::zeros({B, H, Tk, 8}, Dtype::f64);
  const Tensor v = Tensor::ones({B, H, Tk, 1}, Dtype::f64);
  const auto kept_per_row = [&] {
    std::vector<double> kept = ops::attention(q, k, v, options).to_vector<double>();
    for (double& value : kept) value *= double(Tk) * (1.0 - p);
    return kept;
  };
  const uint64_t offset = gen.offset();
  const std::vector<double> first = kept_per_row();
  const double elements = double(B * H * Tq * Tk);
  CHECK(gen.offset() == offset + uint64_t(elements / 4));  // the counters of a (B, H, Tq, Tk) draw
  double kept = 0.0;
  for (double row : first) {
    REQUIRE(std::abs(row - std::round(row)) < 1e-9);  // whole keys: each is kept or dropped
    kept += std::round(row);
  }
  const double sigma = std::sqrt(elements * p * (1.0 - p));
  CHECK(std::abs(kept - elements * (1.0 - p)) < 5.0 * sigma);

  // The next call's mask is new (rows agree only by chance); replaying the first state repeats it.
  const std::vector<double> second = kept_per_row();
  size_t same_rows = 0;
  for (size_t i = 0; i < first.size(); ++i) same_rows += first[i] == second[i] ? 1 : 0;
  CHECK(same_rows < first.size() / 4);
  gen.set_state(gen.seed(), offset);
  CHECK(kept_per_row() == first);
}

TEST_CASE("attention reads non-contiguous views (heads split off by a transpose)") {
  // f32 runs ops/cpu/attention_avx512.cpp where the build targets AVX-512, f64 the Eigen tiles.
  const Case c{2, 3, 65, 67, 8, 6, true};
  for (Dtype dtype : {Dtype::f64, Dtype::f32}) {
    CAPTURE(engine::dtype_name(dtype));
    const double rtol = dtype == Dtype::f64 ? 1e-6 : 2e-5, floor = dtype == Dtype::f64 ? 1e-3 : 1.0;
    engine::Generator gen(7);
    // q, k, v laid out (B, T, H, D) as a projection produces them, viewed as (B, H, T, D).
    Tensor q_base = Tensor::randn({c.B, c.Tq, c.H, c.Dk}, gen, dtype).requires_grad_();
    Tensor k_base = Tensor::randn({c.B, c.Tk, c.H, c.Dk}, gen, dtype).requires_grad_();
    Tensor v_base = Tensor::randn({c.B, c.Tk, c.H, c.Dv + 2}, gen, dtype).requires_grad_();
    Inputs in;
    in.q = q_base.transpose(1, 2);
    in.k = k_base.transpose(1, 2);
    in.v = v_base.narrow(3, 1, c.Dv).transpose(1, 2);
    in.dout = Tensor::randn({c.B, c.H, c.Tq, c.Dv}, gen, dtype);
    in.options.causal = true;
    REQUIRE(!in.q.is_contiguous());
    const Result expected = reference_attention(in);
    Tensor out = ops::attention(in.q, in.k, in.v, in.options);
    out.backward(in.dout);
    check_close(out.to_vector<double>(), expected.out, rtol, "out", floor);
    check_close(q_base.grad().transpose(1, 2).to_vector<double>(), expected.dq, rtol, "dq", floor);
    check_close(k_base.grad().transpose(1, 2).to_vector<double>(), expected.dk, rtol, "dk", floor);
    check_close(v_base.grad().narrow(3, 1, c.Dv).transpose(1, 2).to_vector<double>(), expected.dv, rtol, "dv", floor);
    // The columns of v_base outside the narrowed view get no gradient.
    CHECK(v_base.grad().narrow(3, 0, 1).to_vector<double>() == std::vector<double>(size_t(c.B * c.Tk * c.H), 0.0));
  }
}

TEST_CASE("attention passes gradcheck on a small case with views, ALiBi and masks") {
  engine::Generator gen(11);
  Tensor q_base = Tensor::randn({2, 3, 2, 4}, gen, Dtype::f64).requires_grad_();  // (B, Tq, H, Dk)
  Tensor k = Tensor::randn({2, 2, 5, 4}, gen, Dtype::f64).requires_grad_();
  Tensor v_base = Tensor::randn({2, 2, 5, 5}, gen, Dtype::f64).requires_grad_();
  ops::AttentionOptions options;
  options.causal = true;
  options.alibi_slopes = Tensor::from_vector({0.5, 0.25}, {2}, Dtype::f64);
  options.key_mask = Tensor::from_vector({1, 1, 0, 1, 1, 0, 1, 1, 1, 1}, {2, 5}, Dtype::f32);
  const auto fn = [&](const std::vector<Tensor>& in) {
    return ops::attention(in[0].transpose(1, 2), in[1], in[2].narrow(3, 1, 3), options);
  };
  const engine::GradcheckResult result = engine::gradcheck(fn, {q_base, k, v_base});
  INFO(result.message);
  CHECK(result.ok);
}

TEST_CASE("attention in f32 matches its kernel 0 (f64), forward and gradients") {
  // Lengths that straddle the AVX-512 kernels' tiles (96 queries, 288 keys) and the Eigen kernels'
  // (64), head sizes off and past their 16- and 32-wide vectors.
  const std::vector<Case> cases = {
      {2, 2, 130, 130, 16, 16, true, true},                    // causal, ALiBi
      {2, 2, 65, 63, 12, 20, false, false, true, 0.0, 0.1},    // key mask (the last batch sees no key), dropout
      {1, 3, 100, 300, 20, 40, true, false, false, 0.0, 0.2},  // Tq < Tk over two key tiles, dropout
      {2, 1, 200, 37, 33, 8, false, true, true, 0.5},          // Tq > Tk, Dk past one panel
      {2, 2, 200, 150, 24, 16, true, false, false, 0.0, 0.1},  // causal Tq > Tk: 50 queries see no key
      {1, 2, 350, 350, 16, 8, true},                           // causal over two key tiles
      {4, 3, 6, 6, 32, 32, true, false, false, 0.0, 0.1},      // few keys: SeqPE's encoder, dropout
      {3, 2, 1, 16, 20, 9, true, true, true},                  // few keys: one query, ALiBi, key mask
  };
  for (const Case& c : cases) {
    CAPTURE(case_name(c));
    Inputs in = make_inputs(c, 5);
    // The reference sees the f32-rounded inputs, so only the kernel's arithmetic is measured.
    in.q = in.q.detach().to(Dtype::f32).requires_grad_();
    in.k = in.k.detach().to(Dtype::f32).requires_grad_();
    in.v = in.v.detach().to(Dtype::f32).requires_grad_();
    in.dout = in.dout.to(Dtype::f32);
    const Result expected = reference_attention(in);
    Tensor out = ops::attention(in.q, in.k, in.v, in.options);
    out.backward(in.dout);
    // f32 rounding (~6e-8 per operation) over sums of up to 300 terms, relative to each tensor's scale.
    const std::string name = case_name(c) + " f32";
    check_close(out.to_vector<double>(), expected.out, 1e-5, name + " out", 1.0);
    check_close(in.q.grad().to_vector<double>(), expected.dq, 2e-5, name + " dq", 1.0);
    check_close(in.k.grad().to_vector<double>(), expected.dk, 2e-5, name + " dk", 1.0);
    check_close(in.v.grad().to_vector<double>(), expected.dv, 2e-5, name + " dv", 1.0);
  }
}

TEST_CASE("attention results do not depend on the thread count") {
  // The single head: the f32 kernels' forward then splits its query tiles among the threads; 40 heads
  // of 6 keys: the few-keys kernel's chunks of 16 heads.
  for (const Case& c : {Case{2, 2, 150, 150, 8, 8, true, true, true, 0.0, 0.2}, Case{1, 1, 400, 400, 8, 8, true},
                        Case{40, 2, 6, 6, 8, 8, true, false, false, 0.0, 0.2}})
    for (Dtype dtype : {Dtype::f64, Dtype::f32}) {
      CAPTURE(case_name(c));
      CAPTURE(engine::dtype_name(dtype));
      const auto run = [&](int threads) {
        const int previous = omp_get_max_threads();
        omp_set_num_threads(threads);
        Inputs in = make_inputs(c, 3);
        in.q = in.q.detach().to(dtype).requires_grad_();
        in.k = in.k.detach().to(dtype).requires_grad_();
        in.v = in.v.detach().to(dtype).requires_grad_();
        Tensor out = ops::attention(in.q, in.k, in.v, in.options);
        out.backward(in.dout.to(dtype));
        omp_set_num_threads(previous);
        return std::vector<std::vector<double>>{out.to_vector<double>(), in.q.grad().to_vector<double>(),
                                                in.k.grad().to_vector<double>(), in.v.grad().to_vector<double>()};
      };
      CHECK(run(1) == run(3));
    }
}

TEST_CASE("attention backward: the dS tiles kept for the dQ pass give the gradients of recomputing them") {
  // Causal with Tq != Tk (a query tile's visible keys end inside a key tile), ALiBi, a key mask and
  // dropout; lengths that straddle the 64-key tiles.
  const ops::cpu::AttentionSizes sizes{2, 2, 100, 150, 8, 8};
  const std::vector<double> slopes{0.5, 0.25};
  std::vector<int32_t> keep(size_t(sizes.batch * sizes.key_len), 1);
  for (size_t j = 0; j < keep.size(); j += 7) keep[j] = 0;
  ops::cpu::AttentionBias bias;
  bias.scale = 0.3;
  bias.causal = true;
  bias.alibi_slopes = slopes.data();
  bias.key_keep = keep.data();
  bias.dropout = {0.2, 17, 5};
  engine::Generator gen(21);
  const int64_t BH = sizes.batch * sizes.heads;
  auto random = [&](int64_t count) { return Tensor::randn({count}, gen, Dtype::f64).to_vector<double>(); };
  const std::vector<double> q = random(BH * sizes.query_len * sizes.qk_dim);
  const std::vector<double> k = random(BH * sizes.key_len * sizes.qk_dim);
  const std::vector<double> v = random(BH * sizes.key_len * sizes.value_dim);
  const std::vector<double> dout = random(BH * sizes.query_len * sizes.value_dim);
  std::vector<double> out(dout.size()), lse(size_t(BH * sizes.query_len));
  const ops::cpu::AttentionLayouts layouts = ops::cpu::dense_layouts(sizes);
  ops::cpu::attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), sizes, bias, layouts);
  auto gradients = [&](int64_t kept_bytes) {
    std::vector<double> dq(q.size()), dk(k.size()), dv(v.size());
    ops::cpu::attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), q.data(), k.data(), v.data(),
                                 out.data(), lse.data(), sizes, bias, layouts, kept_bytes);
    return std::vector<std::vector<double>>{dq, dk, dv};
  };
  const auto kept = gradients(ops::cpu::kKeptScoreGradBytes), recomputed = gradients(0);
  CHECK(kept[1] == recomputed[1]);  // dK, dV: the first pass, unchanged
  CHECK(kept[2] == recomputed[2]);
  double diff = 0, norm = 0;
  for (size_t i = 0; i < kept[0].size(); ++i) {
    diff += (kept[0][i] - recomputed[0][i]) * (kept[0][i] - recomputed[0][i]);
    norm += recomputed[0][i] * recomputed[0][i];
  }
  CHECK(norm > 0);
  CHECK(std::sqrt(diff / norm) < 1e-13);
}

TEST_CASE("attention memory is linear in the sequence length") {
  // Tq = Tk = 4096: a stored score matrix would take 4096² · 4 B = 64 MiB; everything the op
  // allocates here (inputs, output, lse, gradients) is about 2.3 MiB.
  const int64_t T = 4096, D = 16;
  engine::Generator gen(9);
  Tensor q = Tensor::randn({1, 1, T, D}, gen).requires_grad_();
  Tensor k = Tensor::randn({1, 1, T, D}, gen).requires_grad_();
  Tensor v = Tensor::randn({1, 1, T, D}, gen).requires_grad_();
  Tensor dout = Tensor::randn({1, 1, T, D}, gen);
  const engine::AllocatorStats before = engine::cpu_allocator().stats();
  Tensor out = ops::attention(q, k, v);
  out.backward(dout);
  const engine::AllocatorStats after = engine::cpu_allocator().stats();
  // The peak may have been set by an earlier test; the op must not raise it by a score matrix.
  const size_t allowed = 8u << 20;
  CHECK(after.peak_bytes_in_use <= std::max(before.peak_bytes_in_use, before.bytes_in_use + allowed));
  for (float value : q.grad().to_vector<float>()) REQUIRE(std::isfinite(value));
}

TEST_CASE("attention rejects bad shapes, dtypes and options with clear messages") {
  Tensor q = Tensor::ones({2, 3, 4, 8});
  Tensor k = Tensor::ones({2, 3, 5, 8});
  Tensor v = Tensor::ones({2, 3, 5, 6});
  CHECK_THROWS_WITH_AS(ops::attention(q.view({6, 4, 8}), k, v), doctest::Contains("must be 4-D (B, H, T, D)"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(ops::attention(q, Tensor::ones({2, 3, 5, 7}), v), doctest::Contains("same head size Dk"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(ops::attention(q, k, Tensor::ones({2, 3, 4, 6})),
                       doctest::Contains("same number of keys Tk"), engine::Error);
  CHECK_THROWS_WITH_AS(ops::attention(q, Tensor::ones({2, 2, 5, 8}), v), doctest::Contains("share batch and heads"),
                       engine::Error);
  CHECK_THROWS_AS(ops::attention(q, k, v.to(Dtype::f64)), engine::Error);
  CHECK_THROWS_WITH_AS(ops::attention(q.to(Dtype::i64), k.to(Dtype::i64), v.to(Dtype::i64)),
                       doctest::Contains("must be f32 or f64"), engine::Error);
  ops::AttentionOptions options;
  options.alibi_slopes = Tensor::ones({2});
  CHECK_THROWS_WITH_AS(ops::attention(q, k, v, options), doctest::Contains("alibi_slopes must be (H) = (3)"),
                       engine::Error);
  options.alibi_slopes = Tensor::ones({3}).requires_grad_();
  CHECK_THROWS_WITH_AS(ops::attention(q, k, v, options), doctest::Contains("get no gradient"), engine::Error);
  options = {};
  options.key_mask = Tensor::ones({2, 4});
  CHECK_THROWS_WITH_AS(ops::attention(q, k, v, options), doctest::Contains("key_mask must be (B, Tk) = (2, 5)"),
                       engine::Error);
  options = {};
  options.dropout_p = 0.1;
  CHECK_THROWS_WITH_AS(ops::attention(q, k, v, options), doctest::Contains("needs a generator (dropout_gen)"),
                       engine::Error);
  engine::Generator gen(1);
  options.dropout_gen = &gen;
  options.dropout_p = 1.5;
  CHECK_THROWS_WITH_AS(ops::attention(q, k, v, options), doctest::Contains("dropout_p must be in [0, 1]"),
                       engine::Error);
}
