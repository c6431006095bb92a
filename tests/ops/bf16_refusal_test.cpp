// bf16 tensors are storage only: every compute op refuses them with an error that names the op and
// the dtype and says how to convert, instead of computing something wrong.
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"
#include "ops/attention.h"
#include "ops/cross_entropy.h"
#include "ops/dropout.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/indexing.h"
#include "ops/kl_div.h"
#include "ops/layernorm.h"
#include "ops/matmul.h"
#include "ops/reduce.h"
#include "ops/rotary.h"
#include "ops/softmax.h"

using engine::Dtype;
using engine::Tensor;

TEST_CASE("compute ops refuse bf16 tensors, naming the op and the dtype") {
  engine::Generator gen(13);
  const Tensor x = Tensor::randn({2, 3, 4}, gen, Dtype::bf16), w = Tensor::randn({4, 4}, gen, Dtype::bf16);
  const Tensor ones = Tensor::ones({4}, Dtype::bf16), zeros = Tensor::zeros({4}, Dtype::bf16);
  const Tensor ids = Tensor::from_indices({0, 3, 1}, {3});
  const Tensor q = Tensor::randn({1, 2, 3, 4}, gen, Dtype::bf16);
  const std::vector<std::pair<const char*, std::function<Tensor()>>> ops = {
      {"matmul", [&] { return ops::matmul(x.select(0, 0), w); }},
      {"linear", [&] { return ops::linear(x, w, ones); }},
      {"layer_norm", [&] { return ops::layer_norm(x, ones, zeros, 1e-5); }},
      {"add", [&] { return ops::add(x, x); }},
      {"mul_scalar", [&] { return ops::mul_scalar(x, 2.0); }},
      {"gelu", [&] { return ops::gelu(x); }},
      {"exp", [&] { return ops::exp(x); }},
      {"sum", [&] { return ops::sum(x); }},
      {"softmax", [&] { return ops::softmax(x, -1); }},
      {"concat", [&] { return ops::concat({x, x}, 0); }},
      {"index_select", [&] { return ops::index_select(w, 0, ids); }},
      {"embedding", [&] { return ops::embedding(ids, w); }},
      {"cross_entropy", [&] { return ops::cross_entropy(w.narrow(0, 0, 3), ids); }},
      {"dropout", [&] { return ops::dropout(x, 0.5, gen, true); }},
      {"kl_div", [&] { return ops::kl_div(x, x); }},
      {"attention", [&] { return ops::attention(q, q, q); }},
  };
  for (const auto& [name, run] : ops) {
    CAPTURE(name);
    std::string message;
    try {
      run();
    } catch (const engine::Error& e) {
      message = e.what();
    }
    CHECK(message.find("bf16") != std::string::npos);
  }
}
