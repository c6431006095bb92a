// Percentile bootstrap confidence intervals of a mean (Efron's percentile method): the evaluation
// apps' error bars on accuracies over a fixed question set, e.g. eval_qa's matches per length and
// per gold-passage third. Deterministic from the seed, so a report is reproduced to the digit.
#pragma once

#include <cstdint>
#include <span>

namespace apps {

struct Interval {
  double low = 0, high = 0;
};

// The `confidence` interval of the mean of `values` (n of them): `resamples` times, draw n values
// with replacement (engine::Generator seeded with `seed`) and take their mean; sort the R means and
// return the order statistics k and R - 1 - k, k = floor(R * (1 - confidence) / 2) (R = 1000 at
// 95 %: the 26th smallest and the 26th largest). Throws on no values, no resamples or a
// confidence outside (0, 1).
Interval bootstrap_mean_interval(std::span<const double> values, int64_t resamples, uint64_t seed,
                                 double confidence = 0.95);

}  // namespace apps
