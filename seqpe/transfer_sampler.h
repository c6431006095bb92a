// Sampler of the knowledge-distillation ("transfer") objective, docs/method.md#distillation-sampler.
//
// Legend: B = batch_size (B_tr, offsets per step), n_t = num_indices, L = cells of the training
// block (512 tokens, or 14 x 14 = 196 patches), n = dims.
//
// The teacher is the PE of the in-distribution training block [0, L) (or the 14 x 14 grid); the
// student is the same block translated by an offset p that leaves it. For each of the B offsets of
// a step, n_t cells of the block are drawn without replacement: the teacher embeddings are the
// main-task PEs at those cells (teacher_indices, row-major into the block), the student positions
// are the cells shifted by p. The loss (docs/method.md#distillation-loss) asks the similarity pattern of the students to
// match the teacher's, a translation-invariance regularizer.
//
// Offsets:
//   1-D: p in [L/4, PE_MAX_POSITION - L), i.e. [128, 19488) for the LM;
//   2-D: (i, j) in [0, S - h) x [0, S - w) except those with i < h and j < w, so the shifted block
//        leaves the training block in at least one coordinate.
// Each sampler-epoch is a shuffle of all offsets, repeated or padded to batches_per_epoch * B
// (random_sampling.h epoch_order).
#pragma once

#include <cstdint>

#include "engine/rng.h"
#include "engine/shape.h"
#include "engine/tensor.h"
#include "seqpe/position.h"

namespace seqpe {

struct TransferSamplerConfig {
  int64_t dims = 1;
  int64_t pe_max_position = 20000;
  engine::Shape block_shape = {512};  // the main task's training block: {L} or {h, w}
  int64_t batch_size = 16;            // B_tr offsets per step
  int64_t num_indices = 32;           // n_t cells per offset
  // Steps per sampler-epoch; 0 means one pass over the offsets, ceil(offsets / B).
  int64_t batches_per_epoch = 0;

  // GPT-2 LM: 1-D, 20000 positions, L 512, B 16, n_t 32 (QA fine-tuning: block_shape {1024}).
  static TransferSamplerConfig text_defaults();
  // ViT-S/16: 2-D 100 x 100 grid, 14 x 14 block, B 32, n_t 64.
  static TransferSamplerConfig image_defaults();
};

struct TransferBatch {
  PositionList offsets;            // (B) the shift p of each row
  engine::Tensor teacher_indices;  // i64 (B, n_t) row-major cells of the training block, in [0, L)
  PositionList students;           // (B * n_t) teacher cells shifted by p, row b's n_t first
};

class TransferSampler {
 public:
  TransferSampler(const TransferSamplerConfig& config, uint64_t seed);

  TransferBatch next();

  const TransferSamplerConfig& config() const { return config_; }
  // Every admissible offset, in construction order.
  const PositionList& offsets() const { return offsets_; }
  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  int64_t epoch() const { return epoch_; }

 private:
  TransferSamplerConfig config_;
  PositionList offsets_;
  int64_t block_cells_;
  int64_t batches_per_epoch_;
  engine::Generator gen_;
  std::vector<int64_t> epoch_order_;  // indices into offsets_
  int64_t batch_in_epoch_ = 0;
  int64_t epoch_ = 0;
};

}  // namespace seqpe
