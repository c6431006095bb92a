// dropout: keep rate, scale, reproducibility from (seed, offset), agreement with fill_random_'s
// bernoulli draw, gradient through the regenerated mask, and the identity cases; the CPU kernels'
// batched Philox blocks against the scalar generator.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <iterator>

#include "engine/autograd.h"
#include "engine/gradcheck.h"
#include "engine/philox.h"
#include "engine/rng.h"
#include "ops/cpu/philox_blocks.h"
#include "ops/dropout.h"

using engine::Dtype;
using engine::Tensor;

TEST_CASE("dropout zeroes a fraction p and scales the rest by 1/(1-p)") {
  const double p = 0.3;
  const int64_t n = 200000;
  engine::Generator gen(5);
  const std::vector<double> out = ops::dropout(Tensor::ones({n}), p, gen, true).to_vector<double>();
  int64_t zeros = 0, wrong_scale = 0;
  for (double v : out) {
    if (v == 0.0) ++zeros;
    else if (std::abs(v - 1 / (1 - p)) > 1e-6) ++wrong_scale;
  }
  CHECK(wrong_scale == 0);
  // Binomial: the zero fraction has std sqrt(p(1-p)/n) ≈ 0.001; 0.006 is six of them.
  CHECK(std::abs(double(zeros) / double(n) - p) < 0.006);
}

TEST_CASE("dropout: the same (seed, offset) gives the same mask, the same as fill_random_'s bernoulli") {
  const double p = 0.4;
  engine::Generator a(17), b(17), c(17);
  Tensor x = Tensor::ones({7, 13});
  const std::vector<double> first = ops::dropout(x, p, a, true).to_vector<double>();
  CHECK(ops::dropout(x, p, b, true).to_vector<double>() == first);
  CHECK(a.offset() == b.offset());
  CHECK(ops::dropout(x, p, a, true).to_vector<double>() != first);  // the generator moved on
  Tensor keep = Tensor::empty({7, 13});
  engine::fill_random_(keep, c, engine::RandomSpec{engine::RandomDistribution::bernoulli, 1 - p});
  const std::vector<double> k = keep.to_vector<double>();
  for (size_t i = 0; i < k.size(); ++i) CHECK((first[i] != 0.0) == (k[i] == 1.0));
}

TEST_CASE("dropout gradient reuses the mask (f64 gradcheck on a transposed view)") {
  engine::Generator gen(3);
  Tensor x = Tensor::randn({6, 5}, gen, Dtype::f64).transpose(0, 1).detach();
  x.requires_grad_();
  auto result = engine::gradcheck(
      [](const std::vector<Tensor>& in) {
        engine::Generator fixed(9);  // every evaluation draws the same mask
        return ops::dropout(in[0], 0.5, fixed, true);
      },
      {x});
  CHECK_MESSAGE(result.ok, result.message);

  engine::Generator g(9);
  Tensor ones = Tensor::ones({50}, Dtype::f64);
  ones.requires_grad_();
  Tensor y = ops::dropout(ones, 0.25, g, true);
  y.backward(Tensor::ones({50}, Dtype::f64));
  CHECK(ones.grad().to_vector<double>() == y.to_vector<double>());
}

TEST_CASE("dropout is the identity in eval or with p = 0; p = 1 zeroes; p is checked") {
  engine::Generator gen(1);
  Tensor x = Tensor::from_vector({1, 2, 3}, {3});
  CHECK(ops::dropout(x, 0.5, gen, false).same(x));
  CHECK(ops::dropout(x, 0.0, gen, true).same(x));
  CHECK(gen.offset() == 0);
  CHECK(ops::dropout(x, 1.0, gen, true).to_vector<double>() == std::vector<double>{0, 0, 0});
  CHECK_THROWS_WITH_AS(ops::dropout(x, 1.5, gen, true), doctest::Contains("p must be in [0, 1]"), engine::Error);
}

TEST_CASE("philox_blocks gives the bits of philox4x32_10, block by block") {
  uint32_t bits[4 * ops::cpu::kPhiloxBlocks];
  // The low counter word wrapping inside a batch, a key with both words set, short batches.
  for (const uint64_t first : {uint64_t(0), uint64_t(12345), uint64_t(0xFFFFFFF0u), uint64_t(0x1234FFFFFFFAull)})
    for (const int64_t count : {int64_t(1), int64_t(17), ops::cpu::kPhiloxBlocks}) {
      const uint64_t key = 0x9876543210ABCDEFull ^ first;
      std::fill(std::begin(bits), std::end(bits), 0xDEADBEEFu);
      ops::cpu::philox_blocks(first, key, count, bits);
      for (int64_t b = 0; b < ops::cpu::kPhiloxBlocks; ++b) {
        const engine::PhiloxBlock want = engine::philox4x32_10(first + uint64_t(b), key);
        for (int lane = 0; lane < 4; ++lane) {
          CAPTURE(first);
          CAPTURE(b);
          if (b < count) REQUIRE(bits[4 * b + lane] == want.v[lane]);
          else REQUIRE(bits[4 * b + lane] == 0xDEADBEEFu);  // past count: not written
        }
      }
    }
}
