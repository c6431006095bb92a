// Synthetic copying sequences for language-model pretraining (data/copy_tasks.h).
#include "data/copy_tasks.h"

#include <algorithm>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "engine/error.h"
#include "engine/rng.h"

namespace data {

namespace {

// Counter blocks reserved per window: each window draws from its own Philox stream (at most a few
// draws per token, far fewer than this for any block length a model trains at).
constexpr uint64_t kBlocksPerWindow = uint64_t(1) << 24;

// Writes a random span of the window again later in the window. Span lengths are uniform in
// [max(2, L/16), L/2] and the gap between the two copies uniform over what fits.
CopyRewrite repeat_span(engine::Generator& gen, std::span<int64_t> window) {
  const int64_t n = int64_t(window.size()), L = n - 1;
  const int64_t shortest = std::max<int64_t>(2, L / 16), longest = L / 2;
  CopyRewrite rewrite{CopyTask::repeated_span};
  rewrite.span = shortest + int64_t(gen.randint(uint64_t(longest - shortest + 1)));
  rewrite.first = int64_t(gen.randint(uint64_t(n - 2 * rewrite.span + 1)));
  const int64_t gap = int64_t(gen.randint(uint64_t(n - 2 * rewrite.span - rewrite.first + 1)));
  rewrite.repeat = rewrite.first + rewrite.span + gap;
  std::copy_n(window.begin() + rewrite.first, rewrite.span, window.begin() + rewrite.repeat);
  return rewrite;
}

// The window's distinct tokens in a random order.
std::vector<int64_t> shuffled_distinct_tokens(engine::Generator& gen, std::span<const int64_t> window) {
  std::vector<int64_t> distinct(window.begin(), window.end());
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  for (int64_t i = int64_t(distinct.size()) - 1; i > 0; --i)
    std::swap(distinct[size_t(i)], distinct[gen.randint(uint64_t(i + 1))]);
  return distinct;
}

// Replaces the window by (L + 1) / 4 key-value pairs (distinct keys drawn from the window's tokens,
// values drawn from its positions) followed by queries "key value" of random pairs; only the
// queried values are scored. Falls back to a repeated span when the window has a single distinct
// token (no two keys can be told apart).
CopyRewrite look_up_keys(engine::Generator& gen, std::span<int64_t> window, std::span<uint8_t> scored) {
  const int64_t n = int64_t(window.size());
  const std::vector<int64_t> original(window.begin(), window.end());
  const std::vector<int64_t> distinct = shuffled_distinct_tokens(gen, original);
  if (distinct.size() < 2) return repeat_span(gen, window);
  CopyRewrite rewrite{CopyTask::key_value};
  rewrite.pairs = std::min<int64_t>(n / 4, int64_t(distinct.size()));
  std::vector<int64_t> values(size_t(rewrite.pairs));
  for (int64_t p = 0; p < rewrite.pairs; ++p) {
    values[size_t(p)] = original[gen.randint(uint64_t(n))];
    window[size_t(2 * p)] = distinct[size_t(p)];
    window[size_t(2 * p + 1)] = values[size_t(p)];
  }
  std::fill(scored.begin(), scored.end(), uint8_t(0));
  for (int64_t at = 2 * rewrite.pairs; at < n; at += 2) {
    const uint64_t query = gen.randint(uint64_t(rewrite.pairs));
    window[size_t(at)] = distinct[query];
    if (at + 1 == n) break;  // no room for the answer: the key stands unscored
    window[size_t(at + 1)] = values[query];
    scored[size_t(at + 1)] = 1;
  }
  return rewrite;
}

// Replaces the window by a span of distinct tokens drawn from it, repeated to fill the window
// (window[i] = span[i % period]); the targets of the first period are not scored. The period is
// uniform in [max(2, L/16), L/2], and at most the number of distinct tokens, so that every token of
// the span has one successor to copy. Falls back to a repeated span when the window has a single
// distinct token.
CopyRewrite repeat_random_span(engine::Generator& gen, std::span<int64_t> window, std::span<uint8_t> scored) {
  const int64_t n = int64_t(window.size()), L = n - 1;
  const std::vector<int64_t> distinct = shuffled_distinct_tokens(gen, window);
  if (distinct.size() < 2) return repeat_span(gen, window);
  const int64_t shortest = std::min<int64_t>(std::max<int64_t>(2, L / 16), int64_t(distinct.size()));
  const int64_t longest = std::min<int64_t>(L / 2, int64_t(distinct.size()));
  CopyRewrite rewrite{CopyTask::random_repeats};
  rewrite.span = shortest + int64_t(gen.randint(uint64_t(longest - shortest + 1)));
  rewrite.repeat = rewrite.span;
  for (int64_t i = 0; i < n; ++i) {
    window[size_t(i)] = distinct[size_t(i % rewrite.span)];
    scored[size_t(i)] = i >= rewrite.span;
  }
  return rewrite;
}

}  // namespace

const char* copy_task_name(CopyTask task) {
  switch (task) {
    case CopyTask::none: return "none";
    case CopyTask::repeated_span: return "repeated_span";
    case CopyTask::key_value: return "key_value";
    case CopyTask::random_repeats: return "random_repeats";
  }
  return "?";
}

std::vector<CopyTask> parse_copy_tasks(const std::string& names, const std::string& field) {
  static constexpr CopyTask kTasks[] = {CopyTask::repeated_span, CopyTask::key_value, CopyTask::random_repeats};
  std::vector<CopyTask> tasks;
  size_t begin = 0;
  while (true) {
    const size_t end = std::min(names.find(',', begin), names.size());
    const std::string name = names.substr(begin, end - begin);
    const auto task = std::find_if(std::begin(kTasks), std::end(kTasks),
                                   [&](CopyTask t) { return name == copy_task_name(t); });
    ENGINE_CHECK(task != std::end(kTasks), field, ": unknown copying task '", name, "' in \"", names,
                 "\" (a comma-separated list of repeated_span, key_value, random_repeats)");
    tasks.push_back(*task);
    if (end == names.size()) return tasks;
    begin = end + 1;
  }
}

CopyMixer::CopyMixer(double ratio, uint64_t seed, std::vector<CopyTask> tasks)
    : ratio_(ratio), seed_(seed), tasks_(std::move(tasks)) {
  ENGINE_CHECK(ratio >= 0 && ratio <= 1, "copy_mix: the share of copying sequences must be in [0, 1], got ", ratio);
  ENGINE_CHECK(!tasks_.empty() && std::count(tasks_.begin(), tasks_.end(), CopyTask::none) == 0,
               "CopyMixer: the tasks must be a non-empty list of copying tasks (\"none\" is not one)");
}

CopyRewrite CopyMixer::apply(uint64_t serial, std::span<int64_t> window, std::span<uint8_t> scored) const {
  ENGINE_CHECK(scored.size() == window.size() && window.size() >= 9, "CopyMixer: a window of ", window.size(),
               " tokens with ", scored.size(), " flags (need equal sizes and a block length of at least 8)");
  std::fill(scored.begin(), scored.end(), uint8_t(1));
  scored[0] = 0;
  engine::Generator gen(seed_);
  gen.set_state(seed_, serial * kBlocksPerWindow);
  if (gen.uniform() >= ratio_) return {};
  const size_t task = std::min(size_t(gen.uniform() * double(tasks_.size())), tasks_.size() - 1);
  switch (tasks_[task]) {
    case CopyTask::repeated_span: return repeat_span(gen, window);
    case CopyTask::key_value: return look_up_keys(gen, window, scored);
    case CopyTask::random_repeats: return repeat_random_span(gen, window, scored);
    case CopyTask::none: break;
  }
  return {};
}

}  // namespace data
