// Sampler of the contrastive (distance-alignment) objective, docs/method.md#contrastive-sampler.
//
// Legend: B = batch_size (B_ct, pivots per step), K = num_candidates, n = dims.
//
// Each step hands out B pivots, K candidate positions per pivot, and the label of each pivot: the
// index of its nearest candidate by squared Euclidean distance (first index on ties). The loss
// (docs/method.md#contrastive-loss) then asks the encoder's dot products to rank that candidate first.
//
// Pivots: each sampler-epoch is a random permutation of every position of the range, repeated or
// padded to batches_per_epoch * B (random_sampling.h epoch_order).
//
// Candidates of one pivot:
//   1. K+1 random positions, uniform over the range without replacement;
//   2. special candidates from a mode drawn per pivot:
//        hard negatives (hard_negatives.h): n_hard = floor(K * hard_negative_ratio) digit edits of
//          the pivot, each kept only if farther from the pivot than the nearest random candidate
//          that is certain to reach the final list, so a hard negative is never the label;
//        distributional: K positions from a small window (1-D) or square (2-D) placed uniformly,
//          independently of the pivot, which teaches fine distinctions between close positions;
//        none: random candidates only;
//   3. special candidates first, then the random ones; duplicates and the pivot are dropped and the
//      list is cut to K. It always has K entries: the K+1 distinct random candidates hold at most
//      one copy of the pivot.
//
// The hard-negative threshold, precisely: the smallest squared distance among the first K - n_hard
// random candidates other than the pivot. The authors' code takes the first K+1 - n_hard random
// candidates, the pivot included; the nearest of those can then be cut from the final list (it
// sits at slot K when all n_hard hard negatives survive) or be the pivot itself (dropped), and a
// hard negative can become the label, which docs/method.md#contrastive-sampler says must not happen. The first K - n_hard
// non-pivot random candidates always reach slots < K, so with this threshold it cannot.
//
// Everything is drawn from one engine::Generator seeded at construction: the same seed gives the
// same batches. Candidates are made when a batch is asked for (the reference prebuilt a whole
// epoch in a background process); the distribution is the same.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"
#include "seqpe/hard_negatives.h"
#include "seqpe/position.h"

namespace seqpe {

enum class ContrastiveMode { random_only, hard_negatives, distributional };

struct ContrastiveSamplerConfig {
  int64_t dims = 1;
  int64_t pe_max_position = 20000;  // the range: [0, 20000) in 1-D, a sqrt x sqrt grid in 2-D
  int64_t base = 10;                // digit base of the hard-negative edits (the tokenizer's)
  int64_t batch_size = 16;          // B_ct pivots per step
  int64_t num_candidates = 32;      // K
  // Probabilities of the modes, drawn per pivot; they must sum to 1.
  double random_only_probability = 0.0;
  double hard_negative_probability = 0.4;
  double distributional_probability = 0.6;
  double hard_negative_ratio = 0.25;   // n_hard = floor(K * ratio)
  // Size of the distributional window in 1-D units: the window is max(range, 5K) long in 1-D;
  // in 2-D the square's side is max(floor(sqrt(range)), floor(sqrt(5K))).
  int64_t distributional_range = 256;
  // Steps per sampler-epoch (the main task's batches per epoch); 0 means one pass over the range,
  // ceil(range / B).
  int64_t batches_per_epoch = 0;

  // GPT-2 on WikiText-103: 1-D, 20000 positions, B 16, K 32, hard 0.4 / distributional 0.6,
  // ratio 0.25 (8 hard negatives), window 256.
  static ContrastiveSamplerConfig text_defaults();
  // ViT-S/16: 2-D 100 x 100 grid, B 32, K 64, none 0.5 / hard 0.3 / distributional 0.2,
  // ratio 0.2 (12 hard negatives), range 196 (a 17 x 17 square since floor(sqrt(5 * 64)) = 17).
  static ContrastiveSamplerConfig image_defaults();
};

struct ContrastiveBatch {
  PositionList pivots;                // (B)
  PositionList candidates;            // (B * K), the K candidates of pivot 0 first
  engine::Tensor labels;              // i64 (B), index in [0, K) of the nearest candidate
  std::vector<ContrastiveMode> modes;  // (B) the mode drawn for each pivot
  // (B) how many leading candidates of each pivot are special (hard negatives or window samples).
  std::vector<int64_t> special_counts;
};

class ContrastiveSampler {
 public:
  ContrastiveSampler(const ContrastiveSamplerConfig& config, uint64_t seed);

  // The next step's pivots, candidates and labels.
  ContrastiveBatch next();

  const ContrastiveSamplerConfig& config() const { return config_; }
  const PositionRange& range() const { return range_; }
  int64_t hard_negative_count() const { return hard_count_; }
  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  // Sampler-epochs started so far (1 after the first call to next()).
  int64_t epoch() const { return epoch_; }

 private:
  ContrastiveMode draw_mode();
  // Hard negatives of `pivot` farther than the threshold set by `random_candidates`.
  std::vector<int64_t> hard_negatives(int64_t pivot, const std::vector<int64_t>& random_candidates);
  // K positions of a window placed uniformly in the range (fewer if the window is smaller).
  std::vector<int64_t> distributional_samples();

  ContrastiveSamplerConfig config_;
  PositionRange range_;
  HardNegativeGenerator hard_negative_generator_;
  int64_t hard_count_;
  int64_t batches_per_epoch_;
  engine::Generator gen_;
  std::vector<int64_t> epoch_order_;  // pivots of the current epoch, as range indices
  int64_t batch_in_epoch_ = 0;
  int64_t epoch_ = 0;
};

}  // namespace seqpe
