// Tests of the contrastive sampler (seqpe/contrastive_sampler.h): defaults, mode shares, labels,
// hard negatives, epochs, seeds.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "seqpe/contrastive_sampler.h"
#include "seqpe/hard_negatives.h"
#include "seqpe/position_tokenizer.h"

using seqpe::ContrastiveMode;
using seqpe::ContrastiveSampler;
using seqpe::ContrastiveSamplerConfig;
using V = std::vector<int64_t>;

namespace {

struct Tally {
  int64_t pivots = 0;
  int64_t by_mode[3] = {0, 0, 0};
  int64_t hard_negatives = 0;  // hard negatives that reached a candidate list
};

// Checks every invariant of one batch against brute force, and tallies the modes.
void check_batch(const ContrastiveSampler& sampler, const seqpe::ContrastiveBatch& batch, Tally& tally) {
  const ContrastiveSamplerConfig& c = sampler.config();
  const int64_t k = c.num_candidates;
  REQUIRE(batch.pivots.size() == c.batch_size);
  REQUIRE(batch.candidates.size() == c.batch_size * k);  // exactly K per pivot
  REQUIRE(batch.labels.shape() == engine::Shape{c.batch_size});
  REQUIRE(batch.labels.dtype() == engine::Dtype::i64);
  const V labels = batch.labels.to_vector<int64_t>();
  const int64_t side = sampler.range().side();
  for (int64_t b = 0; b < c.batch_size; ++b) {
    const auto pivot = batch.pivots[b];
    std::set<V> seen;
    int64_t best = std::numeric_limits<int64_t>::max(), nearest = -1;
    std::vector<int64_t> distance(static_cast<size_t>(k));
    for (int64_t j = 0; j < k; ++j) {
      const auto candidate = batch.candidates[b * k + j];
      for (int64_t x : candidate) REQUIRE((x >= 0 && x < side));
      CHECK(!std::equal(candidate.begin(), candidate.end(), pivot.begin()));  // never the pivot
      CHECK(seen.insert(V(candidate.begin(), candidate.end())).second);      // no duplicates
      distance[size_t(j)] = seqpe::squared_distance(pivot, candidate);
      if (distance[size_t(j)] < best) best = distance[size_t(j)], nearest = j;  // first index on ties
    }
    CHECK(labels[size_t(b)] == nearest);

    const ContrastiveMode mode = batch.modes[size_t(b)];
    const int64_t special = batch.special_counts[size_t(b)];
    ++tally.pivots;
    ++tally.by_mode[int(mode)];
    if (mode == ContrastiveMode::random_only) CHECK(special == 0);
    if (mode == ContrastiveMode::hard_negatives) {
      tally.hard_negatives += special;
      CHECK(special <= sampler.hard_negative_count());
      // Every hard negative is strictly farther than the nearest random candidate, so never the label.
      const int64_t nearest_random = *std::min_element(distance.begin() + special, distance.end());
      for (int64_t j = 0; j < special; ++j) CHECK(distance[size_t(j)] > nearest_random);
      CHECK(labels[size_t(b)] >= special);
    }
    if (mode == ContrastiveMode::distributional && special > 0) {
      // Window samples lie in one window (1-D) or square (2-D) of the configured size.
      const int64_t extent = c.dims == 1 ? std::max(c.distributional_range, 5 * k)
                                         : std::max(int64_t(std::sqrt(double(c.distributional_range))),
                                                    int64_t(std::sqrt(5.0 * double(k))));
      for (int64_t d = 0; d < c.dims; ++d) {
        int64_t lo = std::numeric_limits<int64_t>::max(), hi = -1;
        for (int64_t j = 0; j < special; ++j) {
          lo = std::min(lo, batch.candidates[b * k + j][size_t(d)]);
          hi = std::max(hi, batch.candidates[b * k + j][size_t(d)]);
        }
        CHECK(hi - lo < extent);
      }
    }
  }
}

// |observed share - p| < 5 binomial standard deviations sqrt(p (1 - p) / n).
void check_share(int64_t hits, int64_t n, double p) {
  const double share = double(hits) / double(n);
  const double tolerance = 5.0 * std::sqrt(p * (1.0 - p) / double(n));
  INFO("share ", share, " expected ", p, " +- ", tolerance);
  CHECK(std::abs(share - p) < tolerance);
}

}  // namespace

TEST_CASE("defaults follow docs/method.md#contrastive-sampler") {
  const ContrastiveSamplerConfig text = ContrastiveSamplerConfig::text_defaults();
  CHECK(text.num_candidates == 32);
  CHECK(ContrastiveSampler(text, 0).hard_negative_count() == 8);
  const ContrastiveSamplerConfig image = ContrastiveSamplerConfig::image_defaults();
  CHECK(image.num_candidates == 64);
  const ContrastiveSampler image_sampler(image, 0);
  CHECK(image_sampler.hard_negative_count() == 12);  // floor(64 * 0.2)
  CHECK(image_sampler.range().side() == 100);
}

TEST_CASE("text sampler: mode shares, labels, hard negatives, candidate lists over 20000 pivots") {
  ContrastiveSampler sampler(ContrastiveSamplerConfig::text_defaults(), 1234);
  Tally tally;
  for (int step = 0; step < 1250; ++step) check_batch(sampler, sampler.next(), tally);
  CHECK(tally.pivots == 20000);
  CHECK(tally.by_mode[int(ContrastiveMode::random_only)] == 0);
  check_share(tally.by_mode[int(ContrastiveMode::hard_negatives)], tally.pivots, 0.4);
  check_share(tally.by_mode[int(ContrastiveMode::distributional)], tally.pivots, 0.6);
  // Hard negatives do reach the lists (on average several per hard-mode pivot).
  CHECK(tally.hard_negatives > tally.by_mode[int(ContrastiveMode::hard_negatives)]);
  CHECK(sampler.epoch() == 1);  // 1250 batches of 16 are one pass over 20000 positions
}

TEST_CASE("image sampler: mode shares, labels, hard negatives, candidate lists over 10240 pivots") {
  ContrastiveSampler sampler(ContrastiveSamplerConfig::image_defaults(), 99);
  Tally tally;
  for (int step = 0; step < 320; ++step) check_batch(sampler, sampler.next(), tally);
  CHECK(tally.pivots == 10240);
  check_share(tally.by_mode[int(ContrastiveMode::random_only)], tally.pivots, 0.5);
  check_share(tally.by_mode[int(ContrastiveMode::hard_negatives)], tally.pivots, 0.3);
  check_share(tally.by_mode[int(ContrastiveMode::distributional)], tally.pivots, 0.2);
  CHECK(tally.hard_negatives > tally.by_mode[int(ContrastiveMode::hard_negatives)]);
}

TEST_CASE("hard negatives only: small range and ratio stress the threshold and the merge") {
  // A small range makes the pivot appear among the random candidates often, and a large ratio
  // makes the cut at K bite: the cases where the reference's threshold let a hard negative win.
  ContrastiveSamplerConfig c = ContrastiveSamplerConfig::text_defaults();
  c.pe_max_position = 100;
  c.num_candidates = 8;
  c.hard_negative_ratio = 0.5;
  c.random_only_probability = 0.0;
  c.hard_negative_probability = 1.0;
  c.distributional_probability = 0.0;
  ContrastiveSampler sampler(c, 5);
  Tally tally;
  for (int step = 0; step < 500; ++step) check_batch(sampler, sampler.next(), tally);
  CHECK(tally.by_mode[int(ContrastiveMode::hard_negatives)] == tally.pivots);
  CHECK(tally.hard_negatives > 0);
}

TEST_CASE("pivots: each sampler-epoch is a permutation of the whole range") {
  ContrastiveSamplerConfig c = ContrastiveSamplerConfig::image_defaults();
  c.pe_max_position = 400;  // a 20 x 20 grid: 13 batches of 32 = 400 positions + 16 padding
  c.num_candidates = 16;
  ContrastiveSampler sampler(c, 11);
  CHECK(sampler.batches_per_epoch() == 13);
  std::vector<int> count(400, 0);
  for (int step = 0; step < 13; ++step) {
    const seqpe::ContrastiveBatch batch = sampler.next();
    for (int64_t b = 0; b < batch.pivots.size(); ++b) ++count[size_t(batch.pivots[b][0] * 20 + batch.pivots[b][1])];
  }
  CHECK(std::count(count.begin(), count.end(), 0) == 0);
  CHECK(std::count(count.begin(), count.end(), 2) == 16);
  CHECK(sampler.epoch() == 1);
  sampler.next();
  CHECK(sampler.epoch() == 2);
}

TEST_CASE("the same seed gives the same batches, another seed other batches") {
  for (const ContrastiveSamplerConfig& c :
       {ContrastiveSamplerConfig::text_defaults(), ContrastiveSamplerConfig::image_defaults()}) {
    ContrastiveSampler a(c, 42), b(c, 42), other(c, 43);
    bool differs = false;
    for (int step = 0; step < 5; ++step) {
      const seqpe::ContrastiveBatch x = a.next(), y = b.next(), z = other.next();
      CHECK(x.pivots == y.pivots);
      CHECK(x.candidates == y.candidates);
      CHECK(x.labels.to_vector<int64_t>() == y.labels.to_vector<int64_t>());
      CHECK(x.modes == y.modes);
      differs = differs || !(x.pivots == z.pivots) || !(x.candidates == z.candidates);
    }
    CHECK(differs);
  }
}

TEST_CASE("digit edits keep their constraints") {
  engine::Generator gen(21);
  const seqpe::DigitEditLimits limits{10, 5, 20000};
  int64_t changed_length = 0;
  for (int t = 0; t < 3000; ++t) {
    const int64_t pivot = int64_t(gen.randint(20000));
    const V digits = seqpe::digits_of(pivot, 10);
    const std::optional<V> edited = seqpe::random_digit_edits(digits, limits, gen);
    REQUIRE(edited.has_value());
    CHECK(*edited != digits);
    CHECK(edited->size() >= 1);
    CHECK(edited->size() <= 5);
    if (pivot != 0) CHECK(edited->front() != 0);  // no leading zero
    CHECK(seqpe::value_of(*edited, 10) < 20000);
    changed_length += edited->size() != digits.size();
  }
  CHECK(changed_length > 0);  // inserts and deletes happen
  // Base 2 with a single "1": only inserts (and they must start with 1) can succeed.
  const std::optional<V> binary = seqpe::random_digit_edits(V{1}, seqpe::DigitEditLimits{2, 3, 8}, gen);
  REQUIRE(binary.has_value());
  CHECK(binary->front() == 1);
  CHECK(seqpe::value_of(*binary, 2) < 8);
  // Nothing can change a "1" of base 2 limited to one digit: the edits give up instead of hanging.
  CHECK(!seqpe::random_digit_edits(V{1}, seqpe::DigitEditLimits{2, 1, 2}, gen).has_value());
}

TEST_CASE("2-D hard negatives stay on the grid") {
  const seqpe::PositionRange grid(2, 10000);
  const seqpe::HardNegativeGenerator generator(grid, 10);
  engine::Generator gen(8);
  int64_t made = 0;
  for (int t = 0; t < 3000; ++t) {
    const int64_t pivot = int64_t(gen.randint(10000));
    const std::optional<int64_t> negative = generator.generate(pivot, gen);
    if (!negative) continue;
    ++made;
    CHECK((*negative >= 0 && *negative < 10000));
  }
  CHECK(made == 3000);  // with side 100 and 2 digits every cut is on the grid
}

TEST_CASE("configuration errors name the field") {
  ContrastiveSamplerConfig c = ContrastiveSamplerConfig::text_defaults();
  c.hard_negative_probability = 0.5;
  CHECK_THROWS_WITH_AS(ContrastiveSampler(c, 0), doctest::Contains("must be 1, got 1.1"), engine::Error);
  c = ContrastiveSamplerConfig::text_defaults();
  c.num_candidates = 20000;
  CHECK_THROWS_WITH_AS(ContrastiveSampler(c, 0), doctest::Contains("num_candidates + 1"), engine::Error);
  c = ContrastiveSamplerConfig::image_defaults();
  c.pe_max_position = 20000;
  CHECK_THROWS_WITH_AS(ContrastiveSampler(c, 0), doctest::Contains("is not S^2"), engine::Error);
}
