// Tests of ops::attention's score bias (SeqPE's attn_scalar term as its own input, shared by the
// sequences of a position block), on the CPU: against the widened attention
// [q; α·pq]·[k; pk] it replaces, f64 gradcheck of the bias through every kernel (few keys, tiles),
// results independent of the thread count, and clear errors for a bias of the wrong shape.
//
//   B = batch, P = position blocks, H = heads, Hb = bias planes (1 or H), Tq / Tk = query / key
//   lengths, D = head size, E = position head size
#include <doctest/doctest.h>
#include <omp.h>

#include <string>
#include <vector>

#include "common/attention_checks.h"
#include "engine/autograd.h"
#include "engine/gradcheck.h"
#include "engine/rng.h"
#include "ops/attention.h"

using engine::Dtype;
using engine::Tensor;

namespace {

// Attention with a score bias that requires grad, on f64 leaves shaped for gradcheck.
struct BiasCase {
  int64_t B, P, H, Hb, Tq, Tk, D;
  bool causal = false, alibi = false, key_mask = false;
};

ops::AttentionOptions options_of(const BiasCase& c) {
  ops::AttentionOptions options;
  options.causal = c.causal;
  if (c.alibi) options.alibi_slopes = Tensor::from_vector(std::vector<double>(size_t(c.H), 0.3), {c.H}, Dtype::f64);
  if (c.key_mask) {
    std::vector<double> keep(size_t(c.B * c.Tk), 1.0);
    for (int64_t b = 0; b < c.B; ++b) keep[size_t(b * c.Tk + (b + 1) % c.Tk)] = 0.0;
    options.key_mask = Tensor::from_vector(keep, {c.B, c.Tk}, Dtype::f32);
  }
  return options;
}

}  // namespace

TEST_CASE("attention with a score bias equals the widened attention it replaces (CPU, f64 and f32)") {
  engine::Generator gen(31);
  attention_checks::check_widened_cases(Dtype::f64, engine::Device::cpu(), 300, gen);
  attention_checks::check_widened_cases(Dtype::f32, engine::Device::cpu(), 300, gen);
}

TEST_CASE("attention with a score bias passes gradcheck through the few-keys and the tiled kernels") {
  // Tk <= 16 runs the few-keys kernel, Tk = 70 the tiled one over two key tiles; P = 2 blocks of 2
  // sequences (a per-head plane), and one block for all 3 sequences with one plane for both heads.
  for (const BiasCase& c : {BiasCase{4, 2, 2, 2, 5, 7, 4, true, true, true}, BiasCase{3, 1, 2, 1, 9, 70, 3, true},
                            BiasCase{2, 2, 1, 1, 66, 20, 2}}) {
    CAPTURE(c.Tk);
    engine::Generator gen(uint64_t(40 + c.Tk));
    const Tensor q = Tensor::randn({c.B, c.H, c.Tq, c.D}, gen, Dtype::f64).requires_grad_();
    const Tensor k = Tensor::randn({c.B, c.H, c.Tk, c.D}, gen, Dtype::f64).requires_grad_();
    const Tensor v = Tensor::randn({c.B, c.H, c.Tk, c.D + 1}, gen, Dtype::f64).requires_grad_();
    const Tensor bias = Tensor::randn({c.P, c.Hb, c.Tq, c.Tk}, gen, Dtype::f64).requires_grad_();
    const ops::AttentionOptions base = options_of(c);
    const auto fn = [&](const std::vector<Tensor>& in) {
      ops::AttentionOptions options = base;
      options.score_bias = in[3];
      return ops::attention(in[0], in[1], in[2], options);
    };
    const engine::GradcheckResult result = engine::gradcheck(fn, {q, k, v, bias});
    INFO(result.message);
    CHECK(result.ok);
  }
}

TEST_CASE("attention with a score bias: results, bias gradient included, do not depend on the thread count") {
  // Blocks of 2 sequences: the backward's items are (block, head), each summing its sequences in order.
  for (const attention_checks::WidenedCase& c :
       {attention_checks::WidenedCase{4, 2, 2, 2, 150, 150, 8, 8, true, 0.2},
        attention_checks::WidenedCase{40, 20, 2, 1, 6, 6, 8, 8, true}})
    for (Dtype dtype : {Dtype::f64, Dtype::f32}) {
      CAPTURE(c.Tq);
      CAPTURE(engine::dtype_name(dtype));
      const auto run = [&](int threads) {
        const int previous = omp_get_max_threads();
        omp_set_num_threads(threads);
        engine::Generator gen(7), dropout_gen(8);
        const Tensor q = Tensor::randn({c.B, c.H, c.Tq, c.D}, gen, dtype).requires_grad_();
        const Tensor k = Tensor::randn({c.B, c.H, c.Tk, c.D}, gen, dtype).requires_grad_();
        const Tensor v = Tensor::randn({c.B, c.H, c.Tk, c.D}, gen, dtype).requires_grad_();
        ops::AttentionOptions options;
        options.causal = c.causal;
        options.dropout_p = c.dropout;
        options.dropout_gen = &dropout_gen;
        options.score_bias = Tensor::randn({c.P, c.Hb, c.Tq, c.Tk}, gen, dtype).requires_grad_();
        const Tensor out = ops::attention(q, k, v, options);
        out.backward(Tensor::randn(out.shape(), gen, dtype));
        omp_set_num_threads(previous);
        return std::vector<std::vector<double>>{out.to_vector<double>(), q.grad().to_vector<double>(),
                                                k.grad().to_vector<double>(), v.grad().to_vector<double>(),
                                                options.score_bias.grad().to_vector<double>()};
      };
      CHECK(run(1) == run(3));
    }
}

TEST_CASE("attention rejects a score bias of the wrong shape, dtype or device with a clear message") {
  engine::Generator gen(5);
  const Tensor q = Tensor::randn({4, 2, 5, 8}, gen), k = Tensor::randn({4, 2, 7, 8}, gen), v = k;
  auto message = [&](const Tensor& bias) {
    ops::AttentionOptions options;
    options.score_bias = bias;
    try {
      ops::attention(q, k, v, options);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(message(Tensor::zeros({3, 2, 5, 7})).find("P dividing the batch B = 4") != std::string::npos);
  CHECK(message(Tensor::zeros({2, 3, 5, 7})).find("(P, 1 or H, Tq, Tk)") != std::string::npos);
  CHECK(message(Tensor::zeros({2, 1, 7, 5})).find("Tq = 5, Tk = 7") != std::string::npos);
  CHECK(message(Tensor::zeros({2, 1, 5, 7}, Dtype::f64)).find("give it q's dtype and device") != std::string::npos);
  CHECK(message(Tensor::zeros({2, 1, 5, 7})) == "no error");
}
