// TransformerBlock::forward_last (the last token's output only, as SeqPE's final encoder block
// uses it) against the last row of a full forward, with and without the causal mask, and an f64
// gradcheck through it.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "engine/gradcheck.h"
#include "engine/rng.h"
#include "models/transformer_block.h"

using engine::DType;
using engine::Tensor;

namespace {

models::BlockConfig tiny_block(bool causal) {
  models::BlockConfig c;
  c.channels = 8;
  c.heads = 2;
  c.causal = causal;
  c.init_std = c.projection_init_std = 0.5;  // well above rounding on every path
  c.dtype = DType::f64;
  return c;
}

}  // namespace

TEST_CASE("transformer block: forward_last equals the last row of forward") {
  for (bool causal : {true, false}) {
    CAPTURE(causal);
    engine::Generator gen(7);
    models::TransformerBlock block(tiny_block(causal), gen);
    Tensor x = Tensor::empty({3, 5, 8}, DType::f64);
    engine::fill_random_(x, gen, {engine::RandomDistribution::normal, 0.0, 1.0});
    const auto full = block.forward(x, 0, nullptr, gen).narrow(1, 4, 1).contiguous().to_vector<double>();
    const Tensor last = block.forward_last(x, 0, nullptr, gen);
    CHECK(last.shape() == engine::Shape{3, 1, 8});
    const auto got = last.to_vector<double>();
    double worst = 0;
    for (size_t i = 0; i < full.size(); ++i) worst = std::max(worst, std::abs(full[i] - got[i]));
    CHECK(worst < 1e-12);
  }
}

TEST_CASE("transformer block: gradcheck of forward_last in f64") {
  engine::Generator gen(8);
  models::TransformerBlock block(tiny_block(true), gen);
  Tensor x = Tensor::empty({2, 4, 8}, DType::f64);
  engine::fill_random_(x, gen, {engine::RandomDistribution::normal, 0.0, 1.0});
  x.requires_grad_();
  auto state = block.state_dict();
  auto result = engine::gradcheck([&](const std::vector<Tensor>& in) { return block.forward_last(in[0], 0, nullptr, gen); },
                                  {x, state.at("attn.c_attn.weight"), state.at("mlp.c_fc.weight")});
  CHECK_MESSAGE(result.ok, result.message);
}
