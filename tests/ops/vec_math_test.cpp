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
