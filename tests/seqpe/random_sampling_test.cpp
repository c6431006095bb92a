// Tests of seqpe/random_sampling.h: distinct draws, sampler-epoch orders, ranges read from
// PE_MAX_POSITION.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "seqpe/position.h"
#include "seqpe/random_sampling.h"

using V = std::vector<int64_t>;

TEST_CASE("sample_without_replacement: distinct, in range, uniform first draw") {
  engine::Generator gen(7);
  V all = seqpe::sample_without_replacement(50, 50, gen);
  std::sort(all.begin(), all.end());
  V expected(50);
  std::iota(expected.begin(), expected.end(), 0);
  CHECK(all == expected);

  // Each of 10 values leads a 3-sample with probability 1/10: counts over 10000 draws have binomial
  // std sqrt(10000 * 0.1 * 0.9) = 30; 5 std = 150.
  std::vector<int> first(10, 0);
  for (int t = 0; t < 10000; ++t) {
    V s = seqpe::sample_without_replacement(10, 3, gen);
    CHECK(s.size() == 3);
    CHECK((s[0] != s[1] && s[0] != s[2] && s[1] != s[2]));
    ++first[size_t(s[0])];
  }
  for (int c : first) CHECK(std::abs(c - 1000) < 150);
  CHECK_THROWS_WITH_AS(seqpe::sample_without_replacement(3, 4, gen), doctest::Contains("cannot draw 4"), engine::Error);
}

TEST_CASE("epoch_order: a permutation padded to whole batches, or repeated with distinct extras") {
  engine::Generator gen(3);
  // Pool larger than the epoch's needs: the pool padded to a multiple of the batch size.
  V order = seqpe::epoch_order(1000, 10, 16, gen);
  CHECK(order.size() == 1008);
  std::vector<int> count(1000, 0);
  for (int64_t i : order) ++count[size_t(i)];
  CHECK(std::count(count.begin(), count.end(), 1) == 992);
  CHECK(std::count(count.begin(), count.end(), 2) == 8);
  // Pool smaller: 2 full copies and 40 distinct extras make 30 batches of 8.
  order = seqpe::epoch_order(100, 30, 8, gen);
  CHECK(order.size() == 240);
  count.assign(100, 0);
  for (int64_t i : order) ++count[size_t(i)];
  CHECK(std::count(count.begin(), count.end(), 2) == 60);
  CHECK(std::count(count.begin(), count.end(), 3) == 40);
}

TEST_CASE("PositionRange reads PE_MAX_POSITION as a line or a square grid") {
  const seqpe::PositionRange line(1, 20000);
  CHECK(line.side() == 20000);
  CHECK(line.count() == 20000);
  const seqpe::PositionRange grid(2, 10000);
  CHECK(grid.side() == 100);
  CHECK(grid.count() == 10000);
  int64_t coords[2];
  grid.coordinates(1203, coords);
  CHECK(coords[0] == 12);
  CHECK(coords[1] == 3);
  CHECK(grid.squared_distance(1203, 1505) == 3 * 3 + 2 * 2);
  CHECK(line.squared_distance(7, 2) == 25);
  seqpe::PositionList block(2);
  seqpe::append_block(block, V{5, 7}, {2, 3});
  CHECK(block.coords() == V{5, 7, 5, 8, 5, 9, 6, 7, 6, 8, 6, 9});
  CHECK_THROWS_WITH_AS(seqpe::PositionRange(2, 500), doctest::Contains("is not S^2"), engine::Error);
}
