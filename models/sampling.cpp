// Greedy and temperature / top-k choice of the next token (models/sampling.h).
#include "models/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "engine/error.h"

namespace models {

namespace {

// The index of `row`'s largest value, the first on ties.
int64_t argmax(const float* row, int64_t V) { return int64_t(std::max_element(row, row + V) - row); }

// A draw from softmax(row / temperature) over the `top_k` largest entries (all when 0). The
// probabilities are computed in double, shifted by the maximum so that exp cannot overflow.
int64_t sample(const float* row, int64_t V, double temperature, int64_t top_k, engine::Generator& gen) {
  std::vector<int64_t> candidates(static_cast<size_t>(V));
  std::iota(candidates.begin(), candidates.end(), 0);
  if (top_k > 0 && top_k < V) {
    // The k largest logits, ties broken towards the lower index so the choice is deterministic.
    auto higher = [row](int64_t a, int64_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); };
    std::nth_element(candidates.begin(), candidates.begin() + (top_k - 1), candidates.end(), higher);
    candidates.resize(size_t(top_k));
    std::sort(candidates.begin(), candidates.end());
  }
  double max_logit = -INFINITY;
  for (int64_t v : candidates) max_logit = std::max(max_logit, double(row[v]));
  std::vector<double> weights(candidates.size());
  double total = 0;
  for (size_t i = 0; i < candidates.size(); ++i)
    total += weights[i] = std::exp((row[candidates[i]] - max_logit) / temperature);
  const double target = gen.uniform() * total;
  double cumulative = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    cumulative += weights[i];
    if (target < cumulative) return candidates[i];
  }
  return candidates.back();  // rounding left `target` at the very top
}

}  // namespace

engine::Tensor next_tokens(const engine::Tensor& logits, const SamplingOptions& options, engine::Generator& gen) {
  ENGINE_CHECK(logits.dim() == 2 && logits.size(1) > 0, "next_tokens: logits must be (B, V), got ", logits.describe());
  ENGINE_CHECK(std::isfinite(options.temperature) && options.temperature >= 0,
               "next_tokens: temperature must be finite and >= 0, got ", options.temperature);
  ENGINE_CHECK(options.top_k >= 0, "next_tokens: top_k must be >= 0, got ", options.top_k);
  const int64_t B = logits.size(0), V = logits.size(1);
  const std::vector<float> values =
      logits.to(engine::Device::cpu()).to(engine::Dtype::f32).contiguous().to_vector<float>();
  std::vector<int64_t> chosen(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const float* row = values.data() + b * V;
    chosen[size_t(b)] =
        options.temperature == 0 ? argmax(row, V) : sample(row, V, options.temperature, options.top_k, gen);
  }
  return engine::Tensor::from_indices(chosen, {B, 1}).to(logits.device());
}

}  // namespace models
