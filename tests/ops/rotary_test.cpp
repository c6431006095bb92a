// Tests of ops::rotary: rotation by hand, f64 gradchecks in x and the angles, shape errors.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/gradcheck.h"
#include "engine/rng.h"
#include "ops/rotary.h"

using engine::Dtype;
using engine::Tensor;

TEST_CASE("rotary rotates adjacent pairs by their angle and passes the rest through") {
  // One head, one position, D = 6 with two rotated pairs.
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {1, 1, 1, 6}, Dtype::f64);
  Tensor angles = Tensor::from_vector({M_PI / 2, M_PI}, {1, 2}, Dtype::f64);
  std::vector<double> out = ops::rotary(x, angles).to_vector<double>();
  std::vector<double> expected = {-2, 1, -3, -4, 5, 6};
  for (size_t i = 0; i < out.size(); ++i) CHECK(out[i] == doctest::Approx(expected[i]).epsilon(1e-12));
}

TEST_CASE("rotary gradients in x and in shared or per-head angles") {
  engine::Generator gen(3);
  for (bool per_head : {false, true}) {
    Tensor angles = per_head ? Tensor::randn({3, 5, 3}, gen, Dtype::f64) : Tensor::randn({5, 3}, gen, Dtype::f64);
    angles.requires_grad_();
    Tensor leaf = Tensor::randn({2, 5, 3, 8}, gen, Dtype::f64);
    leaf.requires_grad_();
    auto result = engine::gradcheck(
        [](const std::vector<Tensor>& in) { return ops::rotary(in[0].transpose(1, 2), in[1]); }, {leaf, angles});
    CHECK_MESSAGE(result.ok, result.message);
  }
}

TEST_CASE("rotary rejects mismatched shapes with a clear message") {
  Tensor x = Tensor::zeros({1, 2, 4, 6});
  CHECK_THROWS_WITH_AS(ops::rotary(x, Tensor::zeros({3, 3})), doctest::Contains("do not fit"), engine::Error);
  CHECK_THROWS_WITH_AS(ops::rotary(x, Tensor::zeros({4, 4})), doctest::Contains("do not fit"), engine::Error);
  CHECK_THROWS_WITH_AS(ops::rotary(x, Tensor::zeros({4, 3}, Dtype::f64)), doctest::Contains("dtype"), engine::Error);
}
