// Tests of the baseline position encodings (models/pe/): ALiBi slopes, sinusoidal table, RoPE's
// relative scores, 2-D rotary.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/gradcheck.h"
#include "models/pe/alibi.h"
#include "models/pe/rope.h"
#include "models/pe/sinusoidal.h"
#include "ops/matmul.h"

using engine::Dtype;
using engine::Tensor;

TEST_CASE("ALiBi slopes follow the published formula for 8, 12 and 16 heads") {
  auto slopes8 = models::pe::alibi_slopes(8);
  for (int i = 0; i < 8; ++i) CHECK(slopes8[size_t(i)] == doctest::Approx(std::pow(2.0, -(i + 1))));
  auto slopes16 = models::pe::alibi_slopes(16);
  for (int i = 0; i < 16; ++i) CHECK(slopes16[size_t(i)] == doctest::Approx(std::pow(2.0, -0.5 * (i + 1))));
  // 12 heads: the 8 power-of-two slopes, then 2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5 (docs/method.md#baselines).
  auto slopes12 = models::pe::alibi_slopes(12);
  REQUIRE(slopes12.size() == 12);
  for (int i = 0; i < 8; ++i) CHECK(slopes12[size_t(i)] == doctest::Approx(std::pow(2.0, -(i + 1))));
  for (int i = 0; i < 4; ++i) CHECK(slopes12[size_t(8 + i)] == doctest::Approx(std::pow(2.0, -0.5 - i)));
}

TEST_CASE("sinusoidal table interleaves sin and cos") {
  Tensor table = models::pe::sinusoidal_table(3, 4, 10000.0, Dtype::f64);
  auto v = table.to_vector<double>();
  // position 2, pair 1: angle 2 / 10000^(2/4) = 0.02
  CHECK(v[2 * 4 + 2] == doctest::Approx(std::sin(0.02)));
  CHECK(v[2 * 4 + 3] == doctest::Approx(std::cos(0.02)));
  CHECK(v[0 * 4 + 1] == doctest::Approx(1.0));
}

// Scores q_i·k_j after RoPE at positions p, as a (T, T) matrix.
Tensor rope_scores(const Tensor& q, const Tensor& k, int64_t first_position) {
  models::pe::Rope rope(8, 10000.0, Dtype::f64);
  models::Positions positions;
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < q.size(2); ++i) ids.push_back(first_position + i);
  positions.ids = Tensor::from_indices(ids, {q.size(2)});
  rope.prepare(positions);
  Tensor rq = q, rk = k;
  rope.transform_qk(0, rq, rk);
  return ops::matmul(rq, rk, false, true);
}

TEST_CASE("RoPE scores depend only on i - j: shifting every position changes nothing") {
  engine::Generator gen(9);
  Tensor q = Tensor::randn({1, 2, 6, 8}, gen, Dtype::f64), k = Tensor::randn({1, 2, 6, 8}, gen, Dtype::f64);
  auto base = rope_scores(q, k, 0).to_vector<double>();
  auto shifted = rope_scores(q, k, 1234).to_vector<double>();
  for (size_t i = 0; i < base.size(); ++i) CHECK(shifted[i] == doctest::Approx(base[i]).epsilon(1e-9));
}

TEST_CASE("2-D rotary PEs: axial scores depend on the grid offset only; RoPE-Mixed frequencies get gradients") {
  engine::Generator gen(4);
  models::Positions grid;
  grid.grid_h = 2;
  grid.grid_w = 3;
  grid.class_token = true;
  models::pe::RopeMixed mixed(2, 2, 8, 10.0, gen, Dtype::f64);
  mixed.prepare(grid);
  Tensor q = Tensor::randn({1, 2, 7, 8}, gen, Dtype::f64), k = Tensor::randn({1, 2, 7, 8}, gen, Dtype::f64);
  auto freqs = mixed.named_parameters()[0].second;
  auto result = engine::gradcheck(
      [&](const std::vector<Tensor>&) {
        Tensor rq = q, rk = k;
        mixed.transform_qk(1, rq, rk);
        return ops::matmul(rq, rk, false, true);
      },
      {freqs});
  CHECK_MESSAGE(result.ok, result.message);

  // Axial: token (h, w) and (h', w') score as the same pair shifted by one grid row.
  models::pe::Rope2d axial(8, 100.0, Dtype::f64);
  axial.prepare(grid);
  Tensor same_q = Tensor::randn({1, 1, 1, 8}, gen, Dtype::f64).expand({1, 1, 7, 8}).contiguous();
  Tensor same_k = Tensor::randn({1, 1, 1, 8}, gen, Dtype::f64).expand({1, 1, 7, 8}).contiguous();
  Tensor rq = same_q, rk = same_k;
  axial.transform_qk(0, rq, rk);
  auto s = ops::matmul(rq, rk, false, true).to_vector<double>();
  // Tokens: 0 = class, then (0,0)=1 (0,1)=2 (0,2)=3 (1,0)=4 (1,1)=5 (1,2)=6.
  auto at = [&](int i, int j) { return s[size_t(i * 7 + j)]; };
  CHECK(at(1, 2) == doctest::Approx(at(4, 5)));  // (0,0)->(0,1) vs (1,0)->(1,1)
  CHECK(at(2, 6) == doctest::Approx(at(1, 5)));  // (0,1)->(1,2) vs (0,0)->(1,1)
  CHECK(at(0, 3) == doctest::Approx(at(1, 3)));  // the class token is not rotated: it sits at (0, 0)
}
