// The vectorisable f32 exp and tanh of ops/cpu/vec_math.h against the library functions in double:
// error in ulps over a dense sweep, the special values, and the deterministic lane reductions.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "ops/cpu/vec_math.h"

namespace {

// |got − exact| in units of the f32 spacing at exact (its ulp), for finite exact values.
double ulps(float got, double exact) {
  const double spacing = double(std::nextafter(float(std::fabs(exact)), std::numeric_limits<float>::infinity())) -
                         double(float(std::fabs(exact)));
  return std::fabs(double(got) - exact) / spacing;
}

}  // namespace

TEST_CASE("exp_f32 is within 1.5 ulp of exp over the normal range, with exact special values") {
  double worst = 0;
  for (double x = -87.0; x <= 88.5; x += 0.000731) {
    const float xf = float(x);
    worst = std::max(worst, ulps(ops::cpu::exp_f32(xf), std::exp(double(xf))));
  }
  CHECK(worst <= 1.5);
  CHECK(ops::cpu::exp_f32(0.0f) == 1.0f);
  CHECK(ops::cpu::exp_f32(-std::numeric_limits<float>::infinity()) == 0.0f);
  CHECK(ops::cpu::exp_f32(-200.0f) == 0.0f);
  CHECK(std::isinf(ops::cpu::exp_f32(89.0f)));
  CHECK(std::isinf(ops::cpu::exp_f32(std::numeric_limits<float>::infinity())));
  CHECK(std::isnan(ops::cpu::exp_f32(std::numeric_limits<float>::quiet_NaN())));
  // Gradual underflow: exp(−100) ≈ 3.7e−44 is a subnormal f32.
  CHECK(ops::cpu::exp_f32(-100.0f) == doctest::Approx(std::exp(-100.0)).epsilon(0.05));
}

TEST_CASE("tanh_f32 is within 1.5 ulp of tanh, odd, saturating, NaN-preserving") {
  double worst = 0;
  for (double x = -12.0; x <= 12.0; x += 0.0001731) {
    const float xf = float(x);
    if (xf == 0.0f) continue;
    worst = std::max(worst, ulps(ops::cpu::tanh_f32(xf), std::tanh(double(xf))));
  }
  for (double x = 1e-30; x < 0.7; x *= 1.01) worst = std::max(worst, ulps(ops::cpu::tanh_f32(float(x)), std::tanh(double(float(x)))));
  CHECK(worst <= 1.5);
  CHECK(ops::cpu::tanh_f32(0.0f) == 0.0f);
  CHECK(ops::cpu::tanh_f32(-0.3f) == -ops::cpu::tanh_f32(0.3f));
  CHECK(ops::cpu::tanh_f32(-2.0f) == -ops::cpu::tanh_f32(2.0f));
  CHECK(ops::cpu::tanh_f32(100.0f) == 1.0f);
  CHECK(ops::cpu::tanh_f32(-std::numeric_limits<float>::infinity()) == -1.0f);
  CHECK(std::isnan(ops::cpu::tanh_f32(std::numeric_limits<float>::quiet_NaN())));
}

TEST_CASE("exp_shifted gives exp_f32's values bit for bit, special values and ragged lengths included") {
  // On AVX-512 builds exp_shifted runs exp_f32x16, whose arithmetic must match exp_f32 exactly.
  std::vector<float> x;
  for (double v = -110.0; v <= 90.0; v += 0.000917) x.push_back(float(v));  // the subnormal range too
  for (float v : {-std::numeric_limits<float>::infinity(), std::numeric_limits<float>::infinity(),
                  std::numeric_limits<float>::quiet_NaN(), -0.0f, 0.0f, -104.0f, -103.99f, 88.72f, 89.0f})
    x.push_back(v);
  for (int64_t n : {int64_t(x.size()), int64_t(x.size()) - 5, int64_t(1), int64_t(15), int64_t(17)}) {
    std::vector<float> out(x.size(), 12345.0f);
    ops::cpu::exp_shifted(x.data(), 0.5f, n, out.data());
    int64_t differ = 0;
    for (int64_t i = 0; i < n; ++i) {
      const float want = ops::cpu::exp_f32(x[size_t(i)] - 0.5f);
      const bool same = std::isnan(want) ? std::isnan(out[size_t(i)]) : out[size_t(i)] == want;
      differ += same ? 0 : 1;
    }
    CAPTURE(n);
    CHECK(differ == 0);
    for (size_t i = size_t(n); i < x.size(); ++i) REQUIRE(out[i] == 12345.0f);  // nothing written past n
  }
}

TEST_CASE("max_of, sum_exp and sum_as_double agree with plain loops") {
  for (int64_t n : {1, 7, 16, 17, 255, 256, 257, 1000}) {
    std::vector<float> x(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) x[size_t(i)] = float(std::sin(double(i) * 1.7) * 5.0);
    float max_value = x[0];
    double sum = 0, sum_e = 0;
    for (float v : x) max_value = std::max(max_value, v);
    for (float v : x) {
      sum += double(v);
      sum_e += std::exp(double(v) - double(max_value));
    }
    CHECK(ops::cpu::max_of(x.data(), n) == max_value);
    CHECK(ops::cpu::sum_as_double(x.data(), n) == doctest::Approx(sum).epsilon(1e-12));
    std::vector<float> terms(static_cast<size_t>(n));
    CHECK(ops::cpu::sum_exp(x.data(), max_value, n, terms.data()) == doctest::Approx(sum_e).epsilon(1e-6));
    CHECK(ops::cpu::sum_exp(x.data(), max_value, n, static_cast<float*>(nullptr)) ==
          ops::cpu::sum_exp(x.data(), max_value, n, terms.data()));
    for (int64_t i = 0; i < n; ++i) CHECK(terms[size_t(i)] == ops::cpu::exp_f32(x[size_t(i)] - max_value));
  }
}
