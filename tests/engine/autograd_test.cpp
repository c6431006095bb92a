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
