// Synthetic copying sequences for language-model pretraining (data/copy_tasks.h).
#include "data/copy_tasks.h"

#include <algorithm>
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

// Replaces the window by (L + 1) / 4 key-value pairs (distinct keys drawn from the window's tokens,
// values drawn from its positions) followed by queries "key value" of random pairs; only the
// queried values are scored. Falls back to a repeated span when the window has a single distinct
// token (no two keys can be told apart).
CopyRewrite look_up_keys(engine::Generator& gen, std::span<int64_t> window, std::span<uint8_t> scored) {
  const int64_t n = int64_t(window.size());
  const std::vector<int64_t> original(window.begin(), window.end());
  std::vector<int64_t> distinct = original;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  if (distinct.size() < 2) return repeat_span(gen, window);
  for (int64_t i = int64_t(distinct.size()) - 1; i > 0; --i)
    std::swap(distinct[size_t(i)], distinct[gen.randint(uint64_t(i + 1))]);
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

}  // namespace

const char* copy_task_name(CopyTask task) {
  switch (task) {
    case CopyTask::none: return "none";
    case CopyTask::repeated_span: return "repeated_span";
    case CopyTask::key_value: return "key_value";
  }
  return "?";
}

CopyMixer::CopyMixer(double ratio, uint64_t seed) : ratio_(ratio), seed_(seed) {
  ENGINE_CHECK(ratio >= 0 && ratio <= 1, "copy_mix: the share of copying sequences must be in [0, 1], got ", ratio);
}

CopyRewrite CopyMixer::apply(uint64_t serial, std::span<int64_t> window, std::span<uint8_t> scored) const {
  ENGINE_CHECK(scored.size() == window.size() && window.size() >= 9, "CopyMixer: a window of ", window.size(),
               " tokens with ", scored.size(), " flags (need equal sizes and a block length of at least 8)");
  std::fill(scored.begin(), scored.end(), uint8_t(1));
  scored[0] = 0;
  engine::Generator gen(seed_);
  gen.set_state(seed_, serial * kBlocksPerWindow);
  if (gen.uniform() >= ratio_) return {};
  if (gen.uniform() < 0.5) return repeat_span(gen, window);
  return look_up_keys(gen, window, scored);
}

}  // namespace data
