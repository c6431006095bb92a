// Percentile bootstrap intervals of a mean (apps/bootstrap_interval.h).
#include "apps/bootstrap_interval.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/error.h"
#include "engine/rng.h"

namespace apps {

Interval bootstrap_mean_interval(std::span<const double> values, int64_t resamples, uint64_t seed,
                                 double confidence) {
  ENGINE_CHECK(!values.empty(), "bootstrap_mean_interval: no values to resample");
  ENGINE_CHECK(resamples > 0, "bootstrap_mean_interval: resamples must be positive, got ", resamples);
  ENGINE_CHECK(confidence > 0 && confidence < 1, "bootstrap_mean_interval: confidence must be in (0, 1), got ",
               confidence);
  const uint64_t n = values.size();
  engine::Generator gen(seed);
  std::vector<double> means(static_cast<size_t>(resamples));
  for (double& mean : means) {
    double sum = 0;
    for (uint64_t i = 0; i < n; ++i) sum += values[gen.randint(n)];
    mean = sum / double(n);
  }
  std::sort(means.begin(), means.end());
  // Such products are inexact in doubles: the small term keeps one meant to be whole from flooring below it.
  const int64_t k = int64_t(std::floor(double(resamples) * (1 - confidence) / 2 + 1e-9));
  return {means[size_t(k)], means[size_t(resamples - 1 - k)]};
}

}  // namespace apps
