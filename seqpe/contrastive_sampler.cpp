// The contrastive sampler (seqpe/contrastive_sampler.h): pivots, modes, random, hard and
// distributional candidates, labels.
#include "seqpe/contrastive_sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "seqpe/random_sampling.h"

namespace seqpe {

namespace {

int64_t floor_sqrt(int64_t value) {
  int64_t root = int64_t(std::sqrt(double(value)));
  while (root * root > value) --root;
  while ((root + 1) * (root + 1) <= value) ++root;
  return root;
}

bool contains(const std::vector<int64_t>& values, int64_t value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

void check_config(const ContrastiveSamplerConfig& c) {
  ENGINE_CHECK(c.dims == 1 || c.dims == 2, "ContrastiveSamplerConfig: dims must be 1 or 2, got ", c.dims);
  ENGINE_CHECK(c.batch_size >= 1, "ContrastiveSamplerConfig: batch_size must be positive, got ", c.batch_size);
  ENGINE_CHECK(c.num_candidates >= 1, "ContrastiveSamplerConfig: num_candidates must be positive, got ",
               c.num_candidates);
  ENGINE_CHECK(c.num_candidates + 1 <= c.pe_max_position, "ContrastiveSamplerConfig: num_candidates + 1 = ",
               c.num_candidates + 1, " random candidates cannot be drawn without replacement from ",
               c.pe_max_position, " positions");
  const double probabilities[] = {c.random_only_probability, c.hard_negative_probability,
                                  c.distributional_probability};
  for (double p : probabilities)
    ENGINE_CHECK(p >= 0.0 && p <= 1.0, "ContrastiveSamplerConfig: mode probabilities must lie in [0, 1], got ", p);
  const double sum = probabilities[0] + probabilities[1] + probabilities[2];
  ENGINE_CHECK(std::abs(sum - 1.0) < 1e-9, "ContrastiveSamplerConfig: random_only_probability + ",
               "hard_negative_probability + distributional_probability must be 1, got ", sum);
  ENGINE_CHECK(c.hard_negative_ratio >= 0.0 && c.hard_negative_ratio < 1.0,
               "ContrastiveSamplerConfig: hard_negative_ratio must lie in [0, 1), got ", c.hard_negative_ratio);
  ENGINE_CHECK(c.distributional_range >= 1, "ContrastiveSamplerConfig: distributional_range must be positive, got ",
               c.distributional_range);
  ENGINE_CHECK(c.batches_per_epoch >= 0, "ContrastiveSamplerConfig: batches_per_epoch must be >= 0, got ",
               c.batches_per_epoch);
}

}  // namespace

ContrastiveSamplerConfig ContrastiveSamplerConfig::text_defaults() { return ContrastiveSamplerConfig{}; }

ContrastiveSamplerConfig ContrastiveSamplerConfig::image_defaults() {
  ContrastiveSamplerConfig c;
  c.dims = 2;
  c.pe_max_position = 10000;
  c.batch_size = 32;
  c.num_candidates = 64;
  c.random_only_probability = 0.5;
  c.hard_negative_probability = 0.3;
  c.distributional_probability = 0.2;
  c.hard_negative_ratio = 0.2;
  c.distributional_range = 196;
  return c;
}

ContrastiveSampler::ContrastiveSampler(const ContrastiveSamplerConfig& config, uint64_t seed)
    : config_((check_config(config), config)),
      range_(config.dims, config.pe_max_position),
      hard_negative_generator_(range_, config.base),
      hard_count_(int64_t(std::floor(double(config.num_candidates) * config.hard_negative_ratio))),
      batches_per_epoch_(config.batches_per_epoch > 0
                             ? config.batches_per_epoch
                             : (range_.count() + config.batch_size - 1) / config.batch_size),
      gen_(seed) {}

ContrastiveMode ContrastiveSampler::draw_mode() {
  const double u = gen_.uniform();
  if (u < config_.random_only_probability) return ContrastiveMode::random_only;
  if (u < config_.random_only_probability + config_.hard_negative_probability) return ContrastiveMode::hard_negatives;
  return ContrastiveMode::distributional;
}

std::vector<int64_t> ContrastiveSampler::hard_negatives(int64_t pivot, const std::vector<int64_t>& random_candidates) {
  // The nearest of the first K - n_hard random candidates other than the pivot: all of them reach
  // the final list, so anything strictly farther cannot be the label (see the header).
  const int64_t guaranteed = config_.num_candidates - hard_count_;
  int64_t threshold = std::numeric_limits<int64_t>::max();
  int64_t seen = 0;
  for (int64_t candidate : random_candidates) {
    if (seen == guaranteed) break;
    if (candidate == pivot) continue;
    threshold = std::min(threshold, range_.squared_distance(pivot, candidate));
    ++seen;
  }
  std::vector<int64_t> kept;
  for (int64_t i = 0; i < hard_count_; ++i) {
    const std::optional<int64_t> negative = hard_negative_generator_.generate(pivot, gen_);
    if (negative && range_.squared_distance(pivot, *negative) > threshold) kept.push_back(*negative);
  }
  return kept;
}

std::vector<int64_t> ContrastiveSampler::distributional_samples() {
  const int64_t k = config_.num_candidates;
  std::vector<int64_t> cells;  // range indices of the window, ascending
  if (range_.dims() == 1) {
    const int64_t length = std::min(std::max(config_.distributional_range, 5 * k), range_.count());
    const int64_t start = length < range_.count() ? int64_t(gen_.randint(uint64_t(range_.count() - length))) : 0;
    for (int64_t p = start; p < start + length; ++p) cells.push_back(p);
  } else {
    const int64_t side = range_.side();
    const int64_t square =
        std::min(std::max(floor_sqrt(config_.distributional_range), floor_sqrt(5 * k)), side);
    const int64_t spare = side - square;
    const int64_t row0 = spare > 0 ? int64_t(gen_.randint(uint64_t(spare))) : 0;
    const int64_t col0 = spare > 0 ? int64_t(gen_.randint(uint64_t(spare))) : 0;
    for (int64_t r = row0; r < row0 + square; ++r)
      for (int64_t c = col0; c < col0 + square; ++c) cells.push_back(r * side + c);
  }
  if (int64_t(cells.size()) <= k) return cells;
  std::vector<int64_t> picked;
  picked.reserve(size_t(k));
  for (int64_t i : sample_without_replacement(int64_t(cells.size()), k, gen_)) picked.push_back(cells[size_t(i)]);
  return picked;
}

ContrastiveBatch ContrastiveSampler::next() {
  const int64_t batch = config_.batch_size;
  const int64_t k = config_.num_candidates;
  if (epoch_ == 0 || batch_in_epoch_ == batches_per_epoch_) {
    epoch_order_ = epoch_order(range_.count(), batches_per_epoch_, batch, gen_);
    batch_in_epoch_ = 0;
    ++epoch_;
  }
  const int64_t first = batch_in_epoch_ * batch;
  ++batch_in_epoch_;

  ContrastiveBatch out{PositionList(range_.dims()), PositionList(range_.dims()), {}, {}, {}};
  out.pivots.reserve(batch);
  out.candidates.reserve(batch * k);
  std::vector<int64_t> labels;
  std::vector<int64_t> merged;
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t pivot = epoch_order_[size_t(first + b)];
    const std::vector<int64_t> random_candidates = sample_without_replacement(range_.count(), k + 1, gen_);
    const ContrastiveMode mode = draw_mode();
    std::vector<int64_t> special;
    if (mode == ContrastiveMode::hard_negatives) special = hard_negatives(pivot, random_candidates);
    if (mode == ContrastiveMode::distributional) special = distributional_samples();

    // Special candidates first, then random ones; no duplicate, no pivot, at most K.
    merged.clear();
    int64_t special_count = 0;
    for (int64_t candidate : special) {
      if (int64_t(merged.size()) == k) break;
      if (candidate == pivot || contains(merged, candidate)) continue;
      merged.push_back(candidate);
      ++special_count;
    }
    for (int64_t candidate : random_candidates) {
      if (int64_t(merged.size()) == k) break;
      if (candidate == pivot || contains(merged, candidate)) continue;
      merged.push_back(candidate);
    }
    ENGINE_ASSERT(int64_t(merged.size()) == k);

    // Label: the nearest candidate, the first one on ties.
    int64_t label = 0;
    int64_t best = std::numeric_limits<int64_t>::max();
    for (int64_t j = 0; j < k; ++j) {
      const int64_t distance = range_.squared_distance(pivot, merged[size_t(j)]);
      if (distance < best) {
        best = distance;
        label = j;
      }
    }

    range_.append(out.pivots, pivot);
    for (int64_t candidate : merged) range_.append(out.candidates, candidate);
    labels.push_back(label);
    out.modes.push_back(mode);
    out.special_counts.push_back(special_count);
  }
  out.labels = engine::Tensor::from_indices(labels, {batch});
  return out;
}

}  // namespace seqpe
