// CopyMixer (data/copy_tasks.h): the share of windows rewritten, each task (and the task list) checked on
// random windows, determinism per (seed, serial), and the mix through BlockBatcher (ignored
// targets, the same mix after a resume).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "data/copy_tasks.h"
#include "data/temp_dir.h"
#include "data/text_corpus.h"
#include "engine/error.h"
#include "engine/rng.h"

namespace {

// A window of L + 1 tokens drawn from a vocabulary of 50, different per `salt`.
std::vector<int64_t> random_window(int64_t L, uint64_t salt) {
  engine::Generator gen(salt);
  std::vector<int64_t> window(size_t(L + 1));
  for (int64_t& token : window) token = int64_t(gen.randint(50));
  return window;
}

// One rewritten window: the block length, the window before and after, and what was done.
struct Rewritten {
  int64_t L;
  std::vector<int64_t> original, window;
  std::vector<uint8_t> scored;
  data::CopyRewrite rewrite;
};

// The first 50 windows (block lengths 16 to 65, random tokens) that a mixer with ratio 1, `seed`
// and `tasks` rewrites into `task`.
std::vector<Rewritten> rewrites_of(data::CopyTask task, uint64_t seed,
                                   std::vector<data::CopyTask> tasks = {data::CopyTask::repeated_span,
                                                                        data::CopyTask::key_value}) {
  const data::CopyMixer mixer(1.0, seed, std::move(tasks));
  std::vector<Rewritten> found;
  for (uint64_t serial = 0; found.size() < 50; ++serial) {
    Rewritten r{16 + int64_t(serial % 50), {}, {}, {}, {}};
    r.original = random_window(r.L, serial + 1000 * seed);
    r.window = r.original;
    r.scored.resize(r.window.size());
    r.rewrite = mixer.apply(serial, r.window, r.scored);
    if (r.rewrite.task == task) found.push_back(std::move(r));
  }
  return found;
}

}  // namespace

TEST_CASE("CopyMixer rewrites the share of windows its ratio says, half into each task") {
  const int64_t L = 37;
  for (const double ratio : {0.0, 0.3, 1.0}) {
    const data::CopyMixer mixer(ratio, 7);
    std::map<data::CopyTask, int> counts;
    const int windows = 4000;
    for (int serial = 0; serial < windows; ++serial) {
      std::vector<int64_t> window = random_window(L, uint64_t(serial));
      std::vector<uint8_t> scored(window.size());
      ++counts[mixer.apply(uint64_t(serial), window, scored).task];
    }
    const double rewritten = double(windows - counts[data::CopyTask::none]) / windows;
    // Binomial standard deviation at 4000 draws is at most 0.008: 0.035 is over 4 of them.
    CHECK(std::abs(rewritten - ratio) < 0.035);
    if (ratio > 0) {
      const double span_share = double(counts[data::CopyTask::repeated_span]) / (windows * rewritten);
      // At least 1200 rewrites: a standard deviation of at most 0.015 around one half.
      CHECK(std::abs(span_share - 0.5) < 0.06);
    }
  }
  CHECK_THROWS_WITH_AS(data::CopyMixer(1.5, 0), doctest::Contains("must be in [0, 1], got 1.5"), engine::Error);
}

TEST_CASE("CopyMixer: a repeated span copies the window's own tokens; the rest is untouched and scored") {
  for (const Rewritten& rewritten : rewrites_of(data::CopyTask::repeated_span, 11)) {
    const data::CopyRewrite& r = rewritten.rewrite;
    const int64_t L = rewritten.L;
    CHECK(r.span >= std::max<int64_t>(2, L / 16));
    CHECK(r.span <= L / 2);
    CHECK(r.repeat >= r.first + r.span);
    CHECK(r.repeat + r.span <= L + 1);
    for (int64_t i = 0; i <= L; ++i) {
      const bool in_repeat = i >= r.repeat && i < r.repeat + r.span;
      const std::vector<int64_t>& original = rewritten.original;
      CHECK(rewritten.window[size_t(i)] ==
            (in_repeat ? original[size_t(i - r.repeat + r.first)] : original[size_t(i)]));
      CHECK(rewritten.scored[size_t(i)] == (i > 0));
    }
  }
}

TEST_CASE("CopyMixer: key-value lookups answer each query with its key's value, only answers scored") {
  for (const Rewritten& rewritten : rewrites_of(data::CopyTask::key_value, 12)) {
    const data::CopyRewrite& r = rewritten.rewrite;
    const int64_t L = rewritten.L;
    const std::vector<int64_t>& original = rewritten.original;
    const std::vector<int64_t>& window = rewritten.window;
    const std::vector<uint8_t>& scored = rewritten.scored;
    CHECK(r.pairs == (L + 1) / 4);
    const std::set<int64_t> tokens(original.begin(), original.end());
    std::map<int64_t, int64_t> value_of;
    for (int64_t p = 0; p < r.pairs; ++p) {
      const int64_t key = window[size_t(2 * p)], value = window[size_t(2 * p + 1)];
      CHECK(value_of.count(key) == 0);  // distinct keys
      CHECK(tokens.count(key) == 1);
      CHECK(tokens.count(value) == 1);
      value_of[key] = value;
      CHECK(scored[size_t(2 * p)] == 0);
      CHECK(scored[size_t(2 * p + 1)] == 0);
    }
    int answers = 0;
    for (int64_t at = 2 * r.pairs; at <= L; at += 2) {
      REQUIRE(value_of.count(window[size_t(at)]) == 1);
      CHECK(scored[size_t(at)] == 0);
      if (at + 1 > L) break;
      CHECK(window[size_t(at + 1)] == value_of[window[size_t(at)]]);
      CHECK(scored[size_t(at + 1)] == 1);
      ++answers;
    }
    CHECK(answers == (L + 1 - 2 * r.pairs) / 2);
  }
}

TEST_CASE("CopyMixer: random repeats fill the window with one span of distinct window tokens, the first unscored") {
  for (const Rewritten& rewritten : rewrites_of(data::CopyTask::random_repeats, 13, {data::CopyTask::random_repeats})) {
    const data::CopyRewrite& r = rewritten.rewrite;
    const int64_t L = rewritten.L;
    const std::set<int64_t> tokens(rewritten.original.begin(), rewritten.original.end());
    CHECK(r.first == 0);
    CHECK(r.repeat == r.span);
    CHECK(r.span >= std::min<int64_t>(std::max<int64_t>(2, L / 16), int64_t(tokens.size())));
    CHECK(r.span <= L / 2);
    const std::vector<int64_t> span(rewritten.window.begin(), rewritten.window.begin() + r.span);
    CHECK(std::set<int64_t>(span.begin(), span.end()).size() == span.size());  // distinct
    for (const int64_t token : span) CHECK(tokens.count(token) == 1);
    for (int64_t i = 0; i <= L; ++i) {
      CHECK(rewritten.window[size_t(i)] == span[size_t(i % r.span)]);
      CHECK(rewritten.scored[size_t(i)] == (i >= r.span));
    }
  }
  // Windows of few distinct tokens cap the period; a window of one token falls back to a repeated span.
  const data::CopyMixer mixer(1.0, 4, {data::CopyTask::random_repeats});
  std::vector<uint8_t> scored(33);
  std::set<int64_t> periods;
  for (uint64_t serial = 0; serial < 20; ++serial) {
    std::vector<int64_t> three(33);
    for (size_t i = 0; i < three.size(); ++i) three[i] = int64_t(i % 3) + 7;
    periods.insert(mixer.apply(serial, three, scored).span);
  }
  CHECK(periods == std::set<int64_t>{2, 3});  // L/2 = 16 is out of reach with 3 distinct tokens
  std::vector<int64_t> one(33, 5);
  CHECK(mixer.apply(0, one, scored).task == data::CopyTask::repeated_span);
}

TEST_CASE("CopyMixer draws its tasks uniformly from the list it is given") {
  const std::vector<data::CopyTask> tasks = {data::CopyTask::random_repeats, data::CopyTask::key_value,
                                             data::CopyTask::repeated_span};
  const data::CopyMixer mixer(1.0, 21, tasks);
  std::map<data::CopyTask, int> counts;
  const int windows = 3000;
  for (int serial = 0; serial < windows; ++serial) {
    std::vector<int64_t> window = random_window(30, uint64_t(serial));
    std::vector<uint8_t> scored(window.size());
    ++counts[mixer.apply(uint64_t(serial), window, scored).task];
  }
  CHECK(counts.count(data::CopyTask::none) == 0);
  // A binomial share of 1/3 over 3000 draws has a standard deviation of 0.0086: 0.04 is over 4.
  for (const data::CopyTask task : tasks) CHECK(std::abs(double(counts[task]) / windows - 1.0 / 3) < 0.04);
  CHECK_THROWS_WITH_AS(data::CopyMixer(1.0, 0, {}), doctest::Contains("non-empty list"), engine::Error);
  CHECK_THROWS_WITH_AS(data::CopyMixer(1.0, 0, {data::CopyTask::none}), doctest::Contains("non-empty list"),
                       engine::Error);
}

TEST_CASE("parse_copy_tasks reads a comma-separated list of task names and names the field of a bad one") {
  using data::CopyTask;
  CHECK(data::parse_copy_tasks("random_repeats", "copy_tasks") == std::vector<CopyTask>{CopyTask::random_repeats});
  CHECK(data::parse_copy_tasks("key_value,repeated_span,random_repeats", "copy_tasks") ==
        std::vector<CopyTask>{CopyTask::key_value, CopyTask::repeated_span, CopyTask::random_repeats});
  CHECK_THROWS_WITH_AS(data::parse_copy_tasks("key_value,copy", "copy_tasks"),
                       doctest::Contains("copy_tasks: unknown copying task 'copy' in \"key_value,copy\""),
                       engine::Error);
  CHECK_THROWS_WITH_AS(data::parse_copy_tasks("", "copy_tasks"), doctest::Contains("unknown copying task ''"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(data::parse_copy_tasks("none", "copy_tasks"), doctest::Contains("unknown copying task 'none'"),
                       engine::Error);
}

TEST_CASE("CopyMixer: the same (seed, serial) gives the same sequence; another serial or seed another") {
  const int64_t L = 40;
  const std::vector<int64_t> original = random_window(L, 5);
  const auto rewrite = [&](uint64_t seed, uint64_t serial) {
    std::vector<int64_t> window = original;
    std::vector<uint8_t> scored(window.size());
    data::CopyMixer(1.0, seed).apply(serial, window, scored);
    return window;
  };
  CHECK(rewrite(3, 9) == rewrite(3, 9));
  CHECK(rewrite(3, 9) != rewrite(3, 10));
  CHECK(rewrite(3, 9) != rewrite(4, 9));
  std::vector<int64_t> window(8);
  std::vector<uint8_t> scored(8);
  CHECK_THROWS_WITH_AS(data::CopyMixer(1.0, 0).apply(0, window, scored), doctest::Contains("at least 8"),
                       engine::Error);
}

TEST_CASE("BlockBatcher with a CopyMixer: ignored targets where the mixer says, the same mix after a resume") {
  TempDir dir;
  std::vector<data::TokenId> stream(2001);
  engine::Generator gen(3);
  for (data::TokenId& token : stream) token = data::TokenId(gen.randint(300));
  data::write_token_file(dir / "s.tokens", stream, 300);
  data::TokenFile file(dir / "s.tokens");
  const int64_t L = 20, B = 4;
  data::BlockBatcher batcher(file, L, B, 42);
  batcher.mix_copy_tasks(data::CopyMixer(0.5, 9));
  int ignored = 0;
  for (int step = 0; step < 10; ++step) {
    const data::TokenBatch batch = batcher.next();
    const auto in = batch.inputs.to_vector<int64_t>(), tg = batch.targets.to_vector<int64_t>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t + 1 < L; ++t) {
        const int64_t target = tg[size_t(b * L + t)];
        ignored += target == data::kIgnoredTarget;
        if (target != data::kIgnoredTarget) CHECK(target == in[size_t(b * L + t + 1)]);
      }
  }
  CHECK(ignored > 0);  // some windows were key-value lookups
  const data::BatcherPosition saved = batcher.position();
  const data::TokenBatch expected = batcher.next();
  data::BlockBatcher resumed(file, L, B, 42);
  resumed.mix_copy_tasks(data::CopyMixer(0.5, 9));
  resumed.set_position(saved);
  const data::TokenBatch again = resumed.next();
  CHECK(again.inputs.to_vector<int64_t>() == expected.inputs.to_vector<int64_t>());
  CHECK(again.targets.to_vector<int64_t>() == expected.targets.to_vector<int64_t>());
}
