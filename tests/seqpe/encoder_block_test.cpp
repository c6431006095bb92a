// The SeqPE encoder's shortcuts through a transformer block (seqpe/encoder_block.h) against the
// block's forward: block_forward_last (the last token's output only, as the final encoder block
// uses it) against the last row of a full forward, with and without the causal mask, and an f64
// gradcheck through it; block_forward_from_qkv on a QKV computed once per distinct token and
// gathered (as the first encoder block uses it), all rows or the last only, in f32 bit for bit on
// the AVX-512 GEMM, and its gradcheck.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "engine/gradcheck.h"
#include "engine/rng.h"
#include "models/transformer_block.h"
#include "ops/cpu/sgemm_avx512.h"
#include "ops/indexing.h"
#include "seqpe/encoder_block.h"

using engine::Dtype;
using engine::Tensor;

namespace {

models::BlockConfig tiny_block(bool causal) {
  models::BlockConfig c;
  c.channels = 8;
  c.heads = 2;
  c.causal = causal;
  c.init_std = c.projection_init_std = 0.5;  // well above rounding on every path
  c.dtype = Dtype::f64;
  return c;
}

}  // namespace

TEST_CASE("encoder block: block_forward_last equals the last row of the block's forward") {
  for (bool causal : {true, false}) {
    CAPTURE(causal);
    engine::Generator gen(7);
    models::TransformerBlock block(tiny_block(causal), gen);
    Tensor x = Tensor::empty({3, 5, 8}, Dtype::f64);
    engine::fill_random_(x, gen, {engine::RandomDistribution::normal, 0.0, 1.0});
    const auto full = block.forward(x, 0, nullptr, gen).narrow(1, 4, 1).contiguous().to_vector<double>();
    const Tensor last = seqpe::block_forward_last(block, x, 0, gen);
    CHECK(last.shape() == engine::Shape{3, 1, 8});
    const auto got = last.to_vector<double>();
    double worst = 0;
    for (size_t i = 0; i < full.size(); ++i) worst = std::max(worst, std::abs(full[i] - got[i]));
    CHECK(worst < 1e-12);
  }
}

TEST_CASE("encoder block: gradcheck of block_forward_last in f64") {
  engine::Generator gen(8);
  models::TransformerBlock block(tiny_block(true), gen);
  Tensor x = Tensor::empty({2, 4, 8}, Dtype::f64);
  engine::fill_random_(x, gen, {engine::RandomDistribution::normal, 0.0, 1.0});
  x.requires_grad_();
  auto state = block.state_dict();
  auto result = engine::gradcheck([&](const std::vector<Tensor>& in) { return seqpe::block_forward_last(block, in[0], 0, gen); },
                                  {x, state.at("attn.c_attn.weight"), state.at("mlp.c_fc.weight")});
  CHECK_MESSAGE(result.ok, result.message);
}

namespace {
// x: (4, 5, C) whose 20 tokens take 3 distinct values (rows of `distinct`), by `token_rows`.
Tensor repeated_tokens(const Tensor& distinct, const Tensor& token_rows) {
  return ops::index_select(distinct, 0, token_rows).view({4, 5, distinct.size(1)});
}
const std::vector<int64_t> kTokenRows = {0, 1, 2, 1, 0, 2, 2, 1, 0, 0, 1, 1, 1, 2, 0, 0, 2, 0, 1, 2};
}  // namespace

TEST_CASE("encoder block: block_forward_from_qkv on a gathered per-token QKV equals the block's own paths") {
  for (bool last : {false, true}) {
    CAPTURE(last);
    engine::Generator gen(9);
    auto config = tiny_block(true);
    config.dtype = Dtype::f32;
    config.channels = 64;  // QKV rows of 192: more than one micro-tile of the f32 GEMM
    config.heads = 4;
    models::TransformerBlock block(config, gen);
    Tensor distinct = Tensor::empty({3, 64});
    engine::fill_random_(distinct, gen, {engine::RandomDistribution::normal, 0.0, 1.0});
    const Tensor rows = Tensor::from_indices(kTokenRows, {20});
    const Tensor x = repeated_tokens(distinct, rows);
    const Tensor qkv = repeated_tokens(seqpe::block_qkv(block, distinct), rows);
    const Tensor want = last ? seqpe::block_forward_last(block, x, 0, gen) : block.forward(x, 0, nullptr, gen);
    const Tensor got = seqpe::block_forward_from_qkv(block, x, qkv, 0, gen, last);
    CHECK(got.shape() == want.shape());
    const auto got_values = got.to_vector<float>(), want_values = want.to_vector<float>();
    if (ops::cpu::have_sgemm_avx512) {  // its rows never depend on the other rows of the product
      CHECK(got_values == want_values);
    } else {  // Eigen's kernels may sum in another order for another number of rows
      for (size_t i = 0; i < want_values.size(); ++i)
        CHECK(got_values[i] == doctest::Approx(want_values[i]).epsilon(1e-5));
    }
  }
}

TEST_CASE("encoder block: gradcheck of block_forward_from_qkv through a gathered per-token QKV in f64") {
  engine::Generator gen(10);
  models::TransformerBlock block(tiny_block(true), gen);
  Tensor distinct = Tensor::empty({3, 8}, Dtype::f64);
  engine::fill_random_(distinct, gen, {engine::RandomDistribution::normal, 0.0, 1.0});
  distinct.requires_grad_();
  const Tensor rows = Tensor::from_indices(kTokenRows, {20});
  auto state = block.state_dict();
  auto result = engine::gradcheck(
      [&](const std::vector<Tensor>& in) {
        return seqpe::block_forward_from_qkv(block, repeated_tokens(in[0], rows),
                                             repeated_tokens(seqpe::block_qkv(block, in[0]), rows), 0, gen, false);
      },
      {distinct, state.at("ln_1.weight"), state.at("attn.c_attn.weight"), state.at("attn.c_attn.bias")});
  CHECK_MESSAGE(result.ok, result.message);
}
