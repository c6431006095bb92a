// bf16 in the engine (engine/bfloat16.h, Dtype::bf16): the rounding rule against an independent
// reference (tests/common/bf16_reference.h), bf16 tensors (factories, copies, host access, printing)
// and Tensor::to(Dtype) as a differentiable cast whose gradient is cast back.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "common/bf16_reference.h"
#include "engine/autograd.h"
#include "engine/denormals.h"
#include "engine/gradcheck.h"
#include "engine/rng.h"
#include "engine/tensor.h"

using engine::Dtype;
using engine::Tensor;

namespace {

// The bf16 patterns of a bf16 tensor, in row-major order.
std::vector<uint16_t> bf16_patterns(const Tensor& t) {
  REQUIRE(t.dtype() == Dtype::bf16);
  const Tensor host = t.contiguous();
  std::vector<uint16_t> bits(size_t(host.numel()));
  if (!bits.empty()) std::memcpy(bits.data(), host.raw_data(), bits.size() * sizeof(uint16_t));
  return bits;
}

// Random doubles over many magnitudes (2^-140 .. 2^130: denormal bf16s to overflow), both signs.
std::vector<double> random_values(engine::Generator& gen, int64_t n) {
  const std::vector<double> noise = Tensor::randn({n}, gen, Dtype::f64).to_vector<double>();
  std::vector<double> values(noise.size());
  for (size_t i = 0; i < noise.size(); ++i) values[i] = noise[i] * std::ldexp(1.0, int(i % 271) - 140);
  return values;
}

// Checks the scalar conversions of `values` against the reference, pattern for pattern.
void check_against_reference(const std::vector<double>& values) {
  int mismatches = 0;
  for (double x : values) {
    const float xf = float(x);
    const bool f64_ok = engine::bf16_bits_from_f64(x) == bf16_reference::nearest_bf16(x);
    const bool f32_ok = engine::bf16_bits_from_f32(xf) == bf16_reference::nearest_bf16(double(xf));
    if ((!f64_ok || !f32_ok) && ++mismatches <= 5) {
      CAPTURE(x);
      CHECK(engine::bf16_bits_from_f64(x) == bf16_reference::nearest_bf16(x));
      CHECK(engine::bf16_bits_from_f32(xf) == bf16_reference::nearest_bf16(double(xf)));
    }
  }
  CHECK(mismatches == 0);
}

}  // namespace

TEST_CASE("bf16 rounding: ties to even, NaN, infinities, overflow and denormals") {
  // Ties: 1 + 2^-8 lies halfway between 1 (even) and 1 + 2^-7 (odd), 1 + 3·2^-8 between 1 + 2^-7 (odd)
  // and 1 + 2^-6 (even); a hair above a tie rounds up.
  CHECK(engine::bf16_bits_from_f32(1.0f + 0x1p-8f) == 0x3f80);
  CHECK(engine::bf16_bits_from_f32(1.0f + 3 * 0x1p-8f) == 0x3f82);
  CHECK(engine::bf16_bits_from_f32(-(1.0f + 3 * 0x1p-8f)) == 0xbf82);
  CHECK(engine::bf16_bits_from_f32(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81);
  // f64 is rounded once: through f32 first, 1 + 2^-8 + 2^-30 would become the tie 1 + 2^-8 and then 1.
  CHECK(engine::bf16_bits_from_f64(1.0 + 0x1p-8 + 0x1p-30) == 0x3f81);
  // NaNs stay quiet NaNs with their sign; infinities stay; the largest finite bf16 is 0x1.fep127,
  // and from halfway to 2^128 on values overflow to inf (the tie rounds to the even inf pattern).
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(engine::bf16_bits_from_f32(std::numeric_limits<float>::quiet_NaN()) == 0x7fc0);
  CHECK(engine::bf16_bits_from_f32(std::bit_cast<float>(0x7f800001u)) == 0x7fc0);  // signalling: quieted
  CHECK(engine::bf16_bits_from_f32(std::bit_cast<float>(0xffff0000u)) == 0xffff);  // payload kept
  CHECK(engine::bf16_bits_from_f64(-std::numeric_limits<double>::quiet_NaN()) == 0xffc0);
  CHECK(engine::bf16_bits_from_f32(inf) == 0x7f80);
  CHECK(engine::bf16_bits_from_f64(-double(inf)) == 0xff80);
  CHECK(engine::bf16_bits_from_f32(0x1.fe8p127f) == 0x7f7f);
  CHECK(engine::bf16_bits_from_f32(0x1.ffp127f) == 0x7f80);
  CHECK(engine::bf16_bits_from_f32(std::numeric_limits<float>::max()) == 0x7f80);
  CHECK(engine::bf16_bits_from_f64(1e300) == 0x7f80);
  // Denormals: the least bf16 denormal is 2^-133; half of it is a tie that rounds to zero (even),
  // 1.5 halves round up, 3 halves tie between 1 and 2 ulps and go to 2 (even).
  CHECK(engine::bf16_bits_from_f32(0x1p-133f) == 0x0001);
  CHECK(engine::bf16_bits_from_f32(0x1p-134f) == 0x0000);
  CHECK(engine::bf16_bits_from_f32(-0x1p-134f) == 0x8000);
  CHECK(engine::bf16_bits_from_f32(0x1.8p-134f) == 0x0001);
  CHECK(engine::bf16_bits_from_f32(0x3p-134f) == 0x0002);
  CHECK(engine::bf16_bits_from_f64(0x1.8p-134) == 0x0001);
  CHECK(engine::bf16_bits_from_f64(0x1.ffp-127) == 0x0080);  // rounds up into the least normal
  CHECK(engine::bf16_bits_from_f64(4.9e-324) == 0x0000);     // an f64 denormal
  CHECK(engine::f32_from_bf16_bits(0x0001) == 0x1p-133f);
  CHECK(engine::f32_from_bf16_bits(0xc049) == -3.140625f);

  engine::Generator gen(5);
  check_against_reference(bf16_reference::special_values());
  check_against_reference(random_values(gen, 200001));
}

TEST_CASE("bf16 rounding does not depend on the CPU flushing denormals") {
  // The conversion is integer arithmetic on the bit patterns: a thread that flushes denormals (as
  // training does, engine/denormals.h) rounds them exactly as the GPU does.
  const bool was_flushing = engine::flush_denormal();
  const bool can_flush = engine::set_flush_denormal(true);
  const std::vector<double> values = {1e-40, -3e-42, 0x1.8p-134, 0x3p-134, 0x1.ffp-127, 0x1p-133};
  std::vector<uint16_t> got;
  for (double x : values) got.push_back(engine::bf16_bits_from_f64(x));
  std::vector<float> widened;
  for (uint16_t bits : got) widened.push_back(engine::f32_from_bf16_bits(bits));
  engine::set_flush_denormal(was_flushing);
  if (!can_flush) MESSAGE("this CPU cannot flush denormals: checked without flushing");
  for (size_t i = 0; i < values.size(); ++i) {
    CAPTURE(values[i]);
    CHECK(got[i] == bf16_reference::nearest_bf16(values[i]));
    CHECK(std::bit_cast<uint32_t>(widened[i]) == uint32_t(got[i]) << 16);
  }
}

TEST_CASE("every bf16 survives bf16 -> f32 -> bf16 and bf16 -> f64 -> bf16") {
  int mismatches = 0;
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const uint16_t b = uint16_t(bits);
    const bool nan = (b & 0x7fffu) > 0x7f80u;
    const uint16_t expected = nan ? uint16_t(b | 0x0040u) : b;  // a signalling NaN comes back quiet
    const float widened = engine::f32_from_bf16_bits(b);
    if (engine::bf16_bits_from_f32(widened) != expected || engine::bf16_bits_from_f64(double(widened)) != expected)
      ++mismatches;
  }
  CHECK(mismatches == 0);
}

TEST_CASE("bf16 tensors: factories, copies, host access and printing") {
  CHECK(engine::dtype_size(Dtype::bf16) == 2);
  CHECK(std::string(engine::dtype_name(Dtype::bf16)) == "bf16");
  CHECK(engine::is_floating(Dtype::bf16));
  const std::vector<double> inputs = {1.0, -2.5, 1.0 + 0x1p-8 + 0x1p-30, 3e38, 1e-40, 0.1};
  const Tensor t = Tensor::from_vector(inputs, {2, 3}, Dtype::bf16);
  CHECK(t.describe() == "bf16[2, 3] on cpu");
  CHECK(t.storage()->bytes() == 12);
  const std::vector<double> got = t.to_vector<double>();
  for (size_t i = 0; i < inputs.size(); ++i)
    CHECK(got[i] == bf16_reference::bf16_value(bf16_reference::nearest_bf16(inputs[i])));
  CHECK(got[2] == 1.0 + 0x1p-7);
  CHECK(got[5] == 0.10009765625);
  CHECK(t.narrow(1, 1, 1).narrow(0, 0, 1).item() == -2.5);
  CHECK(Tensor::full({3}, 1.0 + 3 * 0x1p-8, Dtype::bf16).to_vector<float>() == std::vector<float>(3, 1.0f + 0x1p-6f));
  CHECK(Tensor::zeros({4}, Dtype::bf16).to_vector<float>() == std::vector<float>(4, 0.0f));

  // Non-contiguous copies in both directions, with broadcasting; integers convert through f64.
  engine::Generator gen(9);
  const Tensor x = Tensor::randn({5, 7}, gen, Dtype::f64);
  const Tensor xt = x.transpose(0, 1);
  const Tensor as_bf16 = xt.to(Dtype::bf16);
  CHECK(as_bf16.shape() == engine::Shape{7, 5});
  const std::vector<double> source = xt.contiguous().to_vector<double>();
  const std::vector<uint16_t> patterns = bf16_patterns(as_bf16);
  for (size_t i = 0; i < source.size(); ++i) CHECK(patterns[i] == bf16_reference::nearest_bf16(source[i]));
  Tensor into = Tensor::full({3, 5, 7}, std::nan(""), Dtype::bf16);
  into.transpose(1, 2).copy_(as_bf16);  // bf16 -> bf16 through strides, broadcast over the first dim
  for (int64_t b = 0; b < 3; ++b) CHECK(bf16_patterns(into.select(0, b).transpose(0, 1)) == patterns);
  CHECK(Tensor::from_indices({-7, 300, 257}, {3}, Dtype::i64).to(Dtype::bf16).to_vector<double>() ==
        std::vector<double>{-7, 300, 256});  // 257 is a tie between 256 (even) and 258
  CHECK(Tensor::from_vector({-7.75, 300.5}, {2}, Dtype::bf16).to(Dtype::i32).to_vector<int32_t>() ==
        std::vector<int32_t>{-7, 300});
}

TEST_CASE("bf16 random fill rounds the f64 draws; f64-only engine paths refuse bf16 by name") {
  const Tensor b = Tensor::ones({2, 3}, Dtype::bf16);
  engine::Generator gen(3), same_gen(3);
  const Tensor filled = Tensor::randn({4}, gen, Dtype::bf16);
  CHECK(filled.to_vector<double>() == Tensor::randn({4}, same_gen, Dtype::f64).to(Dtype::bf16).to_vector<double>());
  CHECK_THROWS_WITH_AS(engine::gradcheck([](const std::vector<Tensor>& in) { return in[0]; },
                                         {Tensor::ones({2}, Dtype::bf16).requires_grad_()}),
                       doctest::Contains("f64"), engine::Error);
  CHECK_THROWS_WITH_AS(Tensor::from_indices({1}, {1}, Dtype::bf16), doctest::Contains("bf16"), engine::Error);
  CHECK(b.to(Dtype::f32).to_vector<float>() == std::vector<float>(6, 1.0f));
}

TEST_CASE("the cast is differentiable: its gradient is the upstream gradient cast back") {
  engine::Generator gen(21);
  SUBCASE("f64 finite differences through f64 -> f32 -> f64") {
    // Inputs on the f32 grid in [1, 2) and ε = 2^-10 keep x ± ε exact in f32, so the differences
    // see the cast's slope exactly; the analytic gradient is the seed rounded to f32 (rel. ~6e-8).
    std::vector<double> values = Tensor::rand({3, 4}, gen, Dtype::f64).to_vector<double>();
    for (double& v : values) v = double(float(1.25 + 0.5 * v));
    const Tensor x = Tensor::from_vector(values, {3, 4}, Dtype::f64).transpose(0, 1).requires_grad_();
    const engine::GradcheckResult result = engine::gradcheck(
        [](const std::vector<Tensor>& in) { return in[0].to(Dtype::f32).to(Dtype::f64); }, {x}, 0x1p-10);
    CHECK_MESSAGE(result.ok, result.message);
  }
  SUBCASE("exact finite differences through f64 -> bf16 -> f64 at one bf16 ulp") {
    // x on the bf16 grid in [1.25, 1.75), steps of one bf16 ulp (2^-7) and weights on the bf16 grid:
    // both the differences and the gradient are then exact, so they must agree bit for bit.
    const int64_t n = 11;
    std::vector<double> xs, ws;
    const std::vector<double> u = Tensor::rand({2 * n}, gen, Dtype::f64).to_vector<double>();
    for (int64_t i = 0; i < n; ++i) {
      xs.push_back(1.25 + std::floor(u[size_t(i)] * 64) * 0x1p-7);
      ws.push_back(double(engine::f32_from_bf16_bits(engine::bf16_bits_from_f64(4 * u[size_t(n + i)] - 2))));
    }
    const Tensor w = Tensor::from_vector(ws, {n}, Dtype::f64);
    auto loss = [&](const Tensor& x) {
      const std::vector<double> y = x.to(Dtype::bf16).to(Dtype::f64).to_vector<double>();
      double sum = 0;
      for (size_t i = 0; i < y.size(); ++i) sum += ws[i] * y[i];
      return sum;
    };
    const Tensor x = Tensor::from_vector(xs, {n}, Dtype::f64).requires_grad_();
    x.to(Dtype::bf16).to(Dtype::f64).backward(w);
    const std::vector<double> grad = x.grad().to_vector<double>();
    for (int64_t i = 0; i < n; ++i) {
      std::vector<double> plus = xs, minus = xs;
      plus[size_t(i)] += 0x1p-7;
      minus[size_t(i)] -= 0x1p-7;
      const double numeric = (loss(Tensor::from_vector(plus, {n}, Dtype::f64)) -
                              loss(Tensor::from_vector(minus, {n}, Dtype::f64))) / 0x1p-6;
      CHECK(grad[size_t(i)] == numeric);
    }
  }
  SUBCASE("bf16 leaves: gradients arrive in bf16, rounded, and accumulate through broadcasts") {
    const Tensor leaf = Tensor::randn({3, 1}, gen, Dtype::f32).to(Dtype::bf16).detach().requires_grad_();
    const Tensor seed = Tensor::randn({3, 4}, gen, Dtype::f64);
    // Used twice: through a broadcast (sum_to in bf16) and directly (accumulation in bf16).
    const Tensor wide = leaf.expand({3, 4}).to(Dtype::f64);
    wide.backward(seed);
    leaf.to(Dtype::f32).backward(Tensor::ones({3, 1}));
    REQUIRE(leaf.grad().dtype() == Dtype::bf16);
    const std::vector<double> s = seed.to_vector<double>();
    const std::vector<double> got = leaf.grad().to_vector<double>();
    for (int64_t r = 0; r < 3; ++r) {
      // Each seed element is rounded to bf16 by the cast's backward; the row sum in f64 is rounded
      // once more into the bf16 gradient; the second use adds 1 in f32 and rounds again.
      double row = 0;
      for (int64_t c = 0; c < 4; ++c)
        row += double(engine::f32_from_bf16_bits(engine::bf16_bits_from_f64(s[size_t(r * 4 + c)])));
      const float first = engine::f32_from_bf16_bits(engine::bf16_bits_from_f64(row));
      const double expected = double(engine::f32_from_bf16_bits(engine::bf16_bits_from_f32(first + 1.0f)));
      CHECK(got[size_t(r)] == expected);
    }
  }
}
