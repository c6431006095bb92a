// cross_entropy: hand-computed and PyTorch reference values, ignore_index, label smoothing, every
// reduction, random rows against kernel 0 (ops/reference/cross_entropy.h), large logits, saturated f32
// rows against kernel 0 in f64, gradcheck (f64) and errors.
#include <doctest/doctest.h>

#include <cmath>

#include "common/cross_entropy_checks.h"
#include "engine/autograd.h"
#include "engine/gradcheck.h"
#include "engine/rng.h"
#include "ops/cross_entropy.h"
#include "ops/elementwise.h"
#include "ops/reference/cross_entropy.h"
#include "support/op_testing.h"

using engine::Dtype;
using engine::Tensor;
using ops::Reduction;

namespace {

Tensor logits_leaf(const std::vector<double>& values, const engine::Shape& shape, Dtype dtype = Dtype::f64) {
  Tensor t = Tensor::from_vector(values, shape, dtype);
  t.requires_grad_();
  return t;
}

}  // namespace

TEST_CASE("cross_entropy: hand-computed losses for each reduction") {
  // lse([1, 2, 3]) = 3.40760596444438; loss = lse − x_t.
  const double lse = 3.40760596444438;
  Tensor logits = Tensor::from_vector({1, 2, 3, 1, 2, 3}, {2, 3}, Dtype::f64);
  Tensor targets = Tensor::from_indices({2, 0}, {2});
  CHECK(ops::cross_entropy(logits, targets).item() == doctest::Approx(((lse - 3) + (lse - 1)) / 2).epsilon(1e-14));
  CHECK(ops::cross_entropy(logits, targets, -100, 0.0, Reduction::sum).item() ==
        doctest::Approx((lse - 3) + (lse - 1)).epsilon(1e-14));
  const std::vector<double> none = ops::cross_entropy(logits, targets, -100, 0.0, Reduction::none).to_vector<double>();
  CHECK(none[0] == doctest::Approx(lse - 3).epsilon(1e-14));
  CHECK(none[1] == doctest::Approx(lse - 1).epsilon(1e-14));
  // Label smoothing ε: (1 − ε)(lse − x_t) + ε(lse − mean x) = 0.9·0.40760596 + 0.1·1.40760596.
  CHECK(ops::cross_entropy(logits.narrow(0, 0, 1), targets.narrow(0, 0, 1), -100, 0.1).item() ==
        doctest::Approx(0.9 * (lse - 3) + 0.1 * (lse - 2)).epsilon(1e-14));
}

TEST_CASE("cross_entropy matches PyTorch with label smoothing and an ignored target") {
  // torch.nn.functional.cross_entropy(x, t, label_smoothing=0.2) in f64, torch 1.13.1.
  Tensor x = logits_leaf({0.5, -1.2, 2.0, 0.3, 1.5, 0.2, -0.7, 0.9, 0.1, 0.1, 0.1, 3.0}, {3, 4});
  Tensor t = Tensor::from_indices({2, -100, 0}, {3}, Dtype::i32);
  Tensor loss = ops::cross_entropy(x, t, -100, 0.2);
  CHECK(loss.item() == doctest::Approx(1.7984900933678776).epsilon(1e-13));
  loss.backward();
  const std::vector<double> want{0.05212355845680242, -0.010910796553624253, -0.07935619099856983, 0.0381434290953916,
                                 0, 0, 0, 0,
                                 -0.4013862960570035, -0.0013862960570034302, -0.0013862960570034302,
                                 0.4041588881710104};
  const std::vector<double> got = x.grad().to_vector<double>();
  for (size_t i = 0; i < want.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-12));
  CHECK(ops::cross_entropy(x, t, -100, 0.2, Reduction::sum).item() == doctest::Approx(3.596980186735755).epsilon(1e-13));
  const std::vector<double> none = ops::cross_entropy(x, t, -100, 0.2, Reduction::none).to_vector<double>();
  CHECK(none[0] == doctest::Approx(0.6891993073690184).epsilon(1e-13));
  CHECK(none[1] == 0.0);
  CHECK(none[2] == doctest::Approx(2.9077808793667366).epsilon(1e-13));
}

TEST_CASE("cross_entropy: all targets ignored gives loss 0 and zero gradients for every reduction") {
  for (Reduction reduction : {Reduction::mean, Reduction::sum, Reduction::none}) {
    Tensor x = logits_leaf({0.3, -0.2, 1.1, 0.7, 0.5, -0.9}, {2, 3}, Dtype::f32);
    Tensor t = Tensor::from_indices({7, 7}, {2});
    Tensor loss = ops::cross_entropy(x, t, 7, 0.1, reduction);
    for (double v : loss.to_vector<double>()) CHECK(v == 0.0);
    loss.backward(Tensor::ones(loss.shape()));
    for (double g : x.grad().to_vector<double>()) CHECK(g == 0.0);
  }
}

TEST_CASE("cross_entropy: large-magnitude f32 logits stay finite") {
  Tensor x = logits_leaf({1000, -1000, 0, -500, 2000, 1999}, {2, 3}, Dtype::f32);
  Tensor t = Tensor::from_indices({1, 2}, {2});
  Tensor loss = ops::cross_entropy(x, t, -100, 0.0, Reduction::none);
  const std::vector<double> l = loss.to_vector<double>();
  CHECK(l[0] == doctest::Approx(2000.0));
  CHECK(l[1] == doctest::Approx(1.0 + std::log1p(std::exp(-1.0))).epsilon(1e-6));
  loss.backward(Tensor::ones({2}));
  for (double g : x.grad().to_vector<double>()) CHECK(std::isfinite(g));
  CHECK(x.grad().to_vector<double>()[1] == doctest::Approx(-1.0));
}

TEST_CASE("cross_entropy matches its kernel 0 (double), losses and gradients, in f64 and f32") {
  // 7 rows of 37 logits read through a transposed view, one target ignored, with and without smoothing.
  engine::Generator gen(12);
  const Tensor values = (Tensor::randn({37, 7}, gen, Dtype::f64) * 3.0).transpose(0, 1);  // (7, 37)
  const Tensor targets = Tensor::from_indices({36, 0, 5, -100, 17, 2, 30}, {7});
  for (Dtype dtype : {Dtype::f64, Dtype::f32})
    for (double smoothing : {0.0, 0.2}) {
      CAPTURE(engine::dtype_name(dtype));
      CAPTURE(smoothing);
      Tensor logits = values.to(dtype).detach();
      logits.requires_grad_();
      const Tensor losses = ops::cross_entropy(logits, targets, -100, smoothing, Reduction::none);
      losses.backward(Tensor::ones({7}, dtype));
      // Kernel 0 sees the logits the op saw (rounded to f32 in the f32 case): only the op's arithmetic
      // is measured. f32: row sums in double, one f32 exp per element and a few roundings per result;
      // the gradients lie in [-1, 1], where an f32 ulp is at most 1.2e-7.
      const double tolerance = dtype == Dtype::f64 ? 1e-12 : 1e-5;
      const double grad_tolerance = dtype == Dtype::f64 ? 1e-14 : 1e-6;
      op_testing::check_close(losses.to_vector<double>(),
                           ops::reference::cross_entropy(logits, targets, -100, smoothing).to_vector<double>(),
                           tolerance);
      const std::vector<double> grad = logits.grad().to_vector<double>();
      const std::vector<double> want =
          ops::reference::cross_entropy_backward(logits, targets, -100, smoothing).to_vector<double>();
      for (size_t i = 0; i < want.size(); ++i) CHECK(std::abs(grad[i] - want[i]) <= grad_tolerance);
    }
}

TEST_CASE("cross_entropy: f32 gradients of saturated rows (logits near 100) agree with f64 to a few ulp") {
  for (const auto& variant : cross_entropy_checks::kVariants)
    cross_entropy_checks::check_saturated_rows(variant, engine::Device::cpu());
}

TEST_CASE("cross_entropy gradients (f64 gradcheck) on non-contiguous logits with ignored targets") {
  engine::Generator gen(11);
  for (Reduction reduction : {Reduction::mean, Reduction::sum, Reduction::none})
    for (double smoothing : {0.0, 0.15}) {
      // logits (2, 3, 5) read through a permuted view; one target ignored.
      Tensor logits = Tensor::randn({5, 2, 3}, gen, Dtype::f64).permute({1, 2, 0}).detach();
      logits.requires_grad_();
      Tensor targets = Tensor::from_indices({4, 0, -1, 2, 3, 1}, {2, 3});
      auto result = engine::gradcheck(
          [&](const std::vector<Tensor>& in) { return ops::cross_entropy(in[0], targets, -1, smoothing, reduction); },
          {logits});
      CHECK_MESSAGE(result.ok, result.message);
    }
}

TEST_CASE("cross_entropy errors name the target and V") {
  Tensor x = Tensor::ones({2, 3});
  CHECK_THROWS_WITH_AS(ops::cross_entropy(x, Tensor::from_indices({1, 3}, {2})),
                       doctest::Contains("target 3 at position 1 is out of range for V = 3"), engine::Error);
  CHECK_THROWS_WITH_AS(ops::cross_entropy(x, Tensor::from_indices({1, 1, 1}, {3})),
                       doctest::Contains("must have the logits' shape"), engine::Error);
  CHECK_THROWS_WITH_AS(ops::cross_entropy(x, Tensor::ones({2})), doctest::Contains("targets must be i32 or i64"),
                       engine::Error);
}
