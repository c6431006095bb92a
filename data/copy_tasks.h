// Synthetic copying sequences mixed into language-model pretraining: a stated deviation from the
// paper (docs/results/qa.md). Small language models trained on a few million tokens of natural
// text do not learn to copy from their context, and every question of the offline QA set is
// answered by copying; these sequences reward copying directly.
//
// A CopyMixer rewrites a share `ratio` of the training windows (L + 1 corpus tokens, the inputs
// and their next-token targets) in place, each into one of its tasks drawn uniformly:
//   repeated span   a random span of the window's own tokens is written again later in the same
//                   window (over the text that stood there); every target stays scored, so from
//                   the second repeated token on the continuation is predictable only by copying.
//   key-value       "k1 v1 k2 v2 ... kn vn  kq vq  kr vr ...": n pairs of tokens drawn from the
//                   window (distinct keys), then queries, each a key of the list followed by its
//                   value; only the queried values are scored (the pairs themselves are random).
//   random repeats  a span of distinct tokens drawn at random from the window, repeated to fill it
//                   ("a b c d a b c d a b ..."); the first occurrence is random and not scored,
//                   every later token is predictable only by copying. Unlike a repeated span of
//                   text, nothing in it can be guessed from the language, so the whole loss of the
//                   scored targets rewards copying (the copy probe, scripts/copy_probe.sh, asks the
//                   same of random words).
// The default tasks are the first two, half each ("copy_tasks" of train_lm picks others).
// Which windows are rewritten, and how, depends only on (seed, the window's serial number in the
// training stream), so a resumed or data-parallel run mixes exactly the same sequences.
//
//   L = block length (a window holds L + 1 tokens)
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace data {

// The target value that the loss ignores (ops::cross_entropy's default ignore_index).
constexpr int64_t kIgnoredTarget = -100;

enum class CopyTask { none, repeated_span, key_value, random_repeats };
const char* copy_task_name(CopyTask task);  // "none", "repeated_span", "key_value", "random_repeats"
// The tasks of a comma-separated list of names ("repeated_span,key_value"); an unknown or missing
// name is an error naming `field` (the config field that held the list).
std::vector<CopyTask> parse_copy_tasks(const std::string& names, const std::string& field);

// What CopyMixer::apply did to a window, for its tests and counts.
struct CopyRewrite {
  CopyTask task = CopyTask::none;
  // repeated_span: window[repeat + i] = window[first + i] for i < span.
  int64_t first = 0, repeat = 0, span = 0;
  // random_repeats: window[i] = window[i % span] for every i, with first = 0 and repeat = span.
  // key_value: `pairs` pairs at window[0, 2 * pairs), then the queries from window[2 * pairs].
  int64_t pairs = 0;
};

class CopyMixer {
 public:
  // `ratio` in [0, 1]: the share of windows rewritten, each into one of `tasks` (none of them
  // CopyTask::none) drawn uniformly.
  CopyMixer(double ratio, uint64_t seed,
            std::vector<CopyTask> tasks = {CopyTask::repeated_span, CopyTask::key_value});

  // Rewrites `window` (L + 1 tokens, L >= 8) when the draw of window `serial` says so. `scored`
  // (L + 1 flags) is set to whether each token is a scored target: scored[i] refers to window[i]
  // as the target of window[i - 1] (scored[0] is unused and set to 0).
  CopyRewrite apply(uint64_t serial, std::span<int64_t> window, std::span<uint8_t> scored) const;

  double ratio() const { return ratio_; }

 private:
  double ratio_;
  uint64_t seed_;
  std::vector<CopyTask> tasks_;
};

}  // namespace data
