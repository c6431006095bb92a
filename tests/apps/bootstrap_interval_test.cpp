// bootstrap_mean_interval (apps/bootstrap_interval.h) on cases whose interval can be worked out
// by hand, its determinism, and its errors.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "apps/bootstrap_interval.h"
#include "engine/error.h"

TEST_CASE("bootstrap interval: constant values and a single value give a point") {
  const std::vector<double> constant(17, 0.7), single = {0.25};
  const apps::Interval a = apps::bootstrap_mean_interval(constant, 1000, 1);
  CHECK(a.low == doctest::Approx(0.7).epsilon(1e-12));
  CHECK(a.high == doctest::Approx(0.7).epsilon(1e-12));
  const apps::Interval b = apps::bootstrap_mean_interval(single, 1000, 1);
  CHECK(b.low == 0.25);
  CHECK(b.high == 0.25);
}

TEST_CASE("bootstrap interval of {0, 1}: resample means 0, 1/2, 1 with odds 1:2:1, so [0, 1] at 95 %") {
  // Of 1000 resamples about 250 have mean 0 and 250 mean 1 (at least 200 each in all but a
  // 1e-4 share of seeds), so the 26th smallest is 0 and the 26th largest is 1; at 20 % confidence
  // (k = 400) both order statistics fall among the ~500 means of 1/2.
  const std::vector<double> values = {0, 1};
  const apps::Interval wide = apps::bootstrap_mean_interval(values, 1000, 7);
  CHECK(wide.low == 0);
  CHECK(wide.high == 1);
  const apps::Interval narrow = apps::bootstrap_mean_interval(values, 1000, 7, 0.2);
  CHECK(narrow.low == 0.5);
  CHECK(narrow.high == 0.5);
}

TEST_CASE("bootstrap interval of 30 hits in 100 is about the normal one, 0.30 +- 0.09, and seeded") {
  std::vector<double> values(100, 0.0);
  for (int i = 0; i < 30; ++i) values[size_t(i * 3)] = 1;
  const apps::Interval interval = apps::bootstrap_mean_interval(values, 1000, 3);
  // 1.96 * sqrt(0.3 * 0.7 / 100) = 0.0898; the percentile ends move by about 0.01 with the seed.
  CHECK(std::abs(interval.low - (0.30 - 0.0898)) < 0.03);
  CHECK(std::abs(interval.high - (0.30 + 0.0898)) < 0.03);
  const apps::Interval again = apps::bootstrap_mean_interval(values, 1000, 3);
  CHECK(again.low == interval.low);
  CHECK(again.high == interval.high);
}

TEST_CASE("bootstrap interval refuses no values, no resamples and a confidence outside (0, 1)") {
  const std::vector<double> none, some = {1, 2};
  CHECK_THROWS_WITH_AS(apps::bootstrap_mean_interval(none, 10, 0), doctest::Contains("no values"), engine::Error);
  CHECK_THROWS_WITH_AS(apps::bootstrap_mean_interval(some, 0, 0), doctest::Contains("resamples must be positive"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(apps::bootstrap_mean_interval(some, 10, 0, 1.0), doctest::Contains("confidence must be in"),
                       engine::Error);
}
