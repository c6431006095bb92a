// Tests of the main-task position sampler (seqpe/main_position_sampler.h): blocks, shifted starts,
// determinism.
#include <doctest/doctest.h>

#include <cmath>
#include <set>

#include "seqpe/main_position_sampler.h"

using seqpe::MainPositionSampler;
using seqpe::MainPositionSamplerConfig;
using V = std::vector<int64_t>;

namespace {

// Index of `start` in the fixed list, or -1.
int64_t index_in(const seqpe::PositionList& list, std::span<const int64_t> start) {
  for (int64_t i = 0; i < list.size(); ++i)
    if (std::equal(start.begin(), start.end(), list[i].begin())) return i;
  return -1;
}

// Runs `steps` steps; checks each against the fixed list and the cycling pointer; returns the
// number of shifted steps.
int64_t run_and_check(MainPositionSampler& sampler, int steps) {
  const MainPositionSamplerConfig& c = sampler.config();
  const int64_t blocks = c.blocks_per_shifted_step;
  const int64_t cells = engine::shape_numel(c.block_shape);
  const int64_t count = sampler.shift_starts().size();
  int64_t shifted = 0;
  int64_t pointer = -1;  // the model of the sampler's pointer, unknown until the first shifted step
  for (int step = 0; step < steps; ++step) {
    const seqpe::MainPositions out = sampler.next();
    if (!out.shifted) {
      CHECK(out.num_blocks() == 1);
      CHECK(out.positions == sampler.default_positions().positions);
      continue;
    }
    ++shifted;
    REQUIRE(out.num_blocks() == blocks);
    REQUIRE(out.positions.size() == blocks * cells);
    const int64_t first = index_in(sampler.shift_starts(), out.block_starts[0]);
    REQUIRE(first >= 0);  // blocks come from the fixed candidate list
    seqpe::PositionList expected(c.dims);
    for (int64_t b = 0; b < blocks; ++b) {
      CHECK(index_in(sampler.shift_starts(), out.block_starts[b]) == first + b);  // consecutive entries
      seqpe::append_block(expected, out.block_starts[b], c.block_shape);
    }
    CHECK(out.positions == expected);
    // The pointer advances by P and restarts in [0, restart_offset_range) past the end.
    if (pointer < 0 || pointer >= count) {
      CHECK(first < c.restart_offset_range);
      pointer = first;
    } else {
      CHECK(first == std::min(count - blocks, pointer));
    }
    pointer += blocks;
  }
  return shifted;
}

}  // namespace

TEST_CASE("text main sampler: default block, fixed shifted starts, shift rate") {
  const MainPositionSamplerConfig c = MainPositionSamplerConfig::text_defaults();
  MainPositionSampler sampler(c, 10086);
  V expected(512);
  for (int64_t i = 0; i < 512; ++i) expected[size_t(i)] = i;
  CHECK(sampler.default_positions().positions.coords() == expected);
  CHECK(!sampler.default_positions().shifted);
  const seqpe::PositionList& starts = sampler.shift_starts();
  CHECK(starts.size() == 320);
  std::set<int64_t> distinct;
  for (int64_t i = 0; i < starts.size(); ++i) {
    CHECK((starts[i][0] >= 0 && starts[i][0] <= 20000 - 512));
    distinct.insert(starts[i][0]);
  }
  CHECK(distinct.size() == 320);
  // 8000 steps at rate 0.1: binomial std sqrt(0.1 * 0.9 / 8000) = 0.0034; 5 std = 0.017.
  const int64_t shifted = run_and_check(sampler, 8000);
  CHECK(std::abs(double(shifted) / 8000.0 - 0.1) < 5.0 * std::sqrt(0.09 / 8000.0));
}

TEST_CASE("image main sampler: 14 x 14 blocks from 87 x 87 starts, P = 32") {
  MainPositionSamplerConfig c = MainPositionSamplerConfig::image_defaults();
  c.shift_rate = 1.0;  // every step shifted: exercises the cycling pointer
  MainPositionSampler sampler(c, 4);
  CHECK(sampler.default_positions().positions.size() == 196);
  CHECK(sampler.default_positions().positions[15].front() == 1);  // row-major: (1, 1)
  CHECK(sampler.default_positions().positions[15].back() == 1);
  CHECK(sampler.shift_starts().size() == 320);
  for (int64_t i = 0; i < sampler.shift_starts().size(); ++i) {
    const auto start = sampler.shift_starts()[i];
    CHECK((start[0] >= 0 && start[0] <= 86 && start[1] >= 0 && start[1] <= 86));
  }
  CHECK(run_and_check(sampler, 60) == 60);
}

TEST_CASE("main sampler: determinism, no shift when disabled, keep-all downsample") {
  for (const MainPositionSamplerConfig& c :
       {MainPositionSamplerConfig::text_defaults(), MainPositionSamplerConfig::image_defaults()}) {
    MainPositionSampler a(c, 7), b(c, 7), other(c, 8);
    CHECK(a.shift_starts() == b.shift_starts());
    CHECK(!(a.shift_starts() == other.shift_starts()));
    for (int step = 0; step < 50; ++step) {
      const seqpe::MainPositions x = a.next(), y = b.next();
      CHECK(x.shifted == y.shifted);
      CHECK(x.positions == y.positions);
    }
  }
  MainPositionSamplerConfig off = MainPositionSamplerConfig::text_defaults();
  off.use_random_shift = false;
  MainPositionSampler never(off, 1);
  for (int step = 0; step < 200; ++step) CHECK(!never.next().shifted);

  MainPositionSamplerConfig all = MainPositionSamplerConfig::image_defaults();
  all.shift_downsample = 0;
  CHECK(MainPositionSampler(all, 1).shift_starts().size() == 87 * 87);

  MainPositionSamplerConfig bad = MainPositionSamplerConfig::image_defaults();
  bad.block_shape = {14, 101};
  CHECK_THROWS_WITH_AS(MainPositionSampler(bad, 0), doctest::Contains("does not fit"), engine::Error);
}
