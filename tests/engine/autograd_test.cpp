// Tests of autograd (engine/autograd.h): gradients through views, no_grad and detach, gradient-
// ready hooks, and leaf gradients accumulated in place by a backward node.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/tensor.h"

using engine::Dtype;
using engine::Tensor;

TEST_CASE("gradients flow through views to the leaf") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}, Dtype::f64);
  x.requires_grad_();
  // y = x^T narrowed to rows 1..2, expanded: the gradient is the count of uses of each element.
  Tensor y = x.transpose(0, 1).narrow(0, 1, 2).unsqueeze(0).expand({3, 2, 2});
  y.backward(Tensor::ones({3, 2, 2}, Dtype::f64));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 3, 3, 0, 3, 3});
  // Gradients accumulate across backward calls.
  x.view({6}).backward(Tensor::ones({6}, Dtype::f64));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{1, 4, 4, 1, 4, 4});
}

TEST_CASE("no_grad and detach stop recording") {
  Tensor x = Tensor::ones({3}, Dtype::f64);
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
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}, Dtype::f64);
  Tensor unused = Tensor::zeros({3}, Dtype::f64);
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
                         {Tensor::ones({6}, Dtype::f64), Tensor::from_vector({10, 40, 20, 50, 30, 60}, {3, 2}, Dtype::f64)});
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

namespace {

// y = 2·x (f64, CPU) whose backward asks for x's gradient destination and, when it gets one, writes
// or adds 2·dy into it itself, recording what the engine handed out. `misbehave`: takes the
// destination and returns a fresh tensor instead.
class DoubleBackward final : public engine::Node {
 public:
  explicit DoubleBackward(std::vector<engine::GradDestination>* seen, bool misbehave = false)
      : seen_(seen), misbehave_(misbehave) {}
  std::string name() const override { return "DoubleBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    const engine::GradDestination destination = engine::leaf_grad_destination(*this, 0);
    seen_->push_back(destination);
    const Tensor& dy = grads[0];
    Tensor dx = destination.grad.defined() && !misbehave_ ? destination.grad
                                                          : Tensor::empty(dy.shape(), dy.dtype(), dy.device());
    const bool add = destination.grad.defined() && destination.accumulate && !misbehave_;
    for (int64_t i = 0; i < dy.numel(); ++i) dx.data<double>()[i] = (add ? dx.data<double>()[i] : 0.0) + 2 * dy.data<double>()[i];
    return {dx};
  }

 private:
  std::vector<engine::GradDestination>* seen_;
  bool misbehave_;
};

Tensor doubled(const Tensor& x, std::vector<engine::GradDestination>* seen, bool misbehave = false) {
  Tensor y = Tensor::empty(x.shape(), Dtype::f64);
  const Tensor xc = x.contiguous();
  for (int64_t i = 0; i < x.numel(); ++i) y.data<double>()[i] = 2 * xc.data<double>()[i];
  engine::record(std::make_shared<DoubleBackward>(seen, misbehave), {&x}, {&y});
  return y;
}

}  // namespace

TEST_CASE("a backward node accumulates a leaf's gradient in place only where the engine allows it") {
  const Tensor seed = Tensor::from_vector({1, -2, 3}, {3}, Dtype::f64);
  std::vector<engine::GradDestination> seen;

  SUBCASE("a leaf used once: written by the first backward, added into by later ones") {
    Tensor x = Tensor::from_vector({5, 6, 7}, {3}, Dtype::f64).requires_grad_();
    std::vector<std::vector<double>> hooked;
    engine::add_grad_ready_hook(x, [&](const Tensor& leaf) { hooked.push_back(leaf.grad().to_vector<double>()); });
    doubled(x, &seen).backward(seed);
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].grad.defined());
    CHECK(!seen[0].accumulate);
    CHECK(seen[0].grad.impl_ptr() == x.grad().impl_ptr());
    CHECK(x.grad().to_vector<double>() == std::vector<double>{2, -4, 6});
    const engine::TensorImpl* first_grad = x.grad().impl_ptr();
    for (int micro_batch = 2; micro_batch <= 3; ++micro_batch) doubled(x, &seen).backward(seed);
    REQUIRE(seen.size() == 3);
    CHECK((seen[1].accumulate && seen[2].accumulate));
    CHECK(x.grad().impl_ptr() == first_grad);
    CHECK(x.grad().to_vector<double>() == std::vector<double>{6, -12, 18});
    // The hooks ran once per pass, after the in-place add: the engine added nothing more.
    REQUIRE(hooked.size() == 3);
    CHECK(hooked[0] == std::vector<double>{2, -4, 6});
    CHECK(hooked[2] == std::vector<double>{6, -12, 18});
  }
  SUBCASE("a leaf used twice (tied weights) and a non-leaf fall back to the engine's add") {
    Tensor x = Tensor::from_vector({5, 6, 7}, {3}, Dtype::f64).requires_grad_();
    engine::run_backward({doubled(x, &seen), x.view({3, 1})}, {seed, Tensor::ones({3, 1}, Dtype::f64)});
    doubled(x.view({3}), &seen).backward(seed);
    REQUIRE(seen.size() == 2);
    CHECK(!seen[0].grad.defined());
    CHECK(!seen[1].grad.defined());
    CHECK(x.grad().to_vector<double>() == std::vector<double>{5, -7, 13});
  }
  SUBCASE("a .grad set by hand with another layout is not handed out") {
    Tensor x = Tensor::from_vector({5, 6, 7, 8}, {2, 2}, Dtype::f64).requires_grad_();
    x.set_grad(Tensor::from_vector({10, 20, 30, 40}, {2, 2}, Dtype::f64).transpose(0, 1));  // not contiguous
    doubled(x, &seen).backward(Tensor::from_vector({1, -2, 3, -4}, {2, 2}, Dtype::f64));
    REQUIRE(seen.size() == 1);
    CHECK(!seen[0].grad.defined());
    CHECK(x.grad().contiguous().to_vector<double>() == std::vector<double>{12, 26, 26, 32});
  }
  SUBCASE("outside a backward, or for another node, there is no destination") {
    Tensor x = Tensor::from_vector({5, 6, 7}, {3}, Dtype::f64).requires_grad_();
    const Tensor y = doubled(x, &seen);
    CHECK(!engine::leaf_grad_destination(*y.grad_fn(), 0).grad.defined());
    CHECK(!x.grad().defined());
  }
  SUBCASE("a node that takes the destination must return it; a .grad made for it is dropped") {
    Tensor x = Tensor::from_vector({5, 6, 7}, {3}, Dtype::f64).requires_grad_();
    CHECK_THROWS_WITH_AS(doubled(x, &seen, true).backward(seed), doctest::Contains("DoubleBackward: took the gradient"),
                         engine::Error);
    CHECK(!x.grad().defined());
    // A failed pass leaves .grad and the engine as they were: the next pass adds as usual.
    doubled(x, &seen).backward(seed);
    CHECK_THROWS_AS(doubled(x, &seen, true).backward(seed), engine::Error);
    CHECK(x.grad().to_vector<double>() == std::vector<double>{2, -4, 6});
    doubled(x.view({3}), &seen).backward(seed);
    CHECK(x.grad().to_vector<double>() == std::vector<double>{4, -8, 12});
  }
}
