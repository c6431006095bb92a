// Tests of autograd (engine/autograd.h): gradients through views, no_grad and detach, gradient-
// ready hooks.
#include <doctest/doctest.h>

#include "engine/autograd.h"
#include "engine/tensor.h"

using engine::DType;
using engine::Tensor;

TEST_CASE("gradients flow through views to the leaf") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}, DType::f64);
  x.requires_grad_();
  // y = x^T narrowed to rows 1..2, expanded: the gradient is the count of uses of each element.
  Tensor y = x.transpose(0, 1).narrow(0, 1, 2).unsqueeze(0).expand({3, 2, 2});
  y.backward(Tensor::ones({3, 2, 2}, DType::f64));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 3, 3, 0, 3, 3});
  // Gradients accumulate across backward calls.
  x.view({6}).backward(Tensor::ones({6}, DType::f64));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{1, 4, 4, 1, 4, 4});
}

TEST_CASE("no_grad and detach stop recording") {
  Tensor x = Tensor::ones({3}, DType::f64);
  x.requires_grad_();
  {
    engine::NoGradGuard guard;
    CHECK(!x.view({3, 1}).requires_grad());
  }
  CHECK(x.view({3, 1}).requires_grad());
  CHECK(!x.detach().requires_grad());
  CHECK_THROWS_WITH_AS(x.detach().backward(), doctest::Contains("does not require grad"), engine::Error);
  CHECK_THROWS_WITH_AS(x.view({3, 1}).backward(), doctest::Contains("seed"), engine::Error);
  CHECK_THROWS_WITH_AS(x.fill_(0), doctest::Contains("NoGradGuard"), engine::Error);
}

TEST_CASE("gradient-ready hooks run once per pass, after every use of the leaf") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}, DType::f64);
  Tensor unused = Tensor::zeros({3}, DType::f64);
  x.requires_grad_();
  unused.requires_grad_();
  std::vector<std::vector<double>> seen;  // x.grad() at each call
  int unused_calls = 0;
  const int64_t id = engine::add_grad_ready_hook(x, [&](const Tensor& leaf) {
    CHECK(leaf.impl_ptr() == x.impl_ptr());
    seen.push_back(leaf.grad().to_vector<double>());
  });
  engine::add_grad_ready_hook(unused, [&](const Tensor&) { ++unused_calls; });
  // x is used twice (like tied embeddings): the hook sees the sum of both uses' gradients.
  const auto backward_both = [&] {
    engine::run_backward({x.view({6}), x.transpose(0, 1)},
                         {Tensor::ones({6}, DType::f64), Tensor::from_vector({10, 40, 20, 50, 30, 60}, {3, 2}, DType::f64)});
  };
  backward_both();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0] == std::vector<double>{11, 21, 31, 41, 51, 61});
  CHECK(unused_calls == 0);
  // Gradients accumulate across passes; each pass calls the hook once with the running sum.
  backward_both();
  REQUIRE(seen.size() == 2);
  CHECK(seen[1] == std::vector<double>{22, 42, 62, 82, 102, 122});
  engine::remove_grad_ready_hook(x, id);
  backward_both();
  CHECK(seen.size() == 2);
  CHECK_THROWS_WITH_AS(engine::add_grad_ready_hook(x.view({6}), [](const Tensor&) {}),
                       doctest::Contains("leaf tensor that requires grad"), engine::Error);
}
