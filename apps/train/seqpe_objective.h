// SeqPE's auxiliary objective in training (docs/method.md#contrastive-objective to
// docs/method.md#one-encoder-forward-per-step): each step draws the main
// positions (random shift), a contrastive batch and a transfer batch from samplers seeded per rank,
// encodes them in one encoder forward (SeqPe::encode_step, whose main part the model's forward
// then uses), and returns the weighted contrastive + distillation loss. SeqPE's encoder dropout
// stream is seeded per rank too and saved with the checkpoint; the samplers are deterministic from
// their seeds and are replayed to the saved number of draws.
#pragma once

#include <memory>

#include "apps/train/auxiliary_objective.h"
#include "seqpe/contrastive_sampler.h"
#include "seqpe/main_position_sampler.h"
#include "seqpe/seqpe_options.h"
#include "seqpe/seqpe_position_encoding.h"
#include "seqpe/transfer_sampler.h"

namespace apps::train {

class SeqPeObjective : public AuxiliaryObjective {
 public:
  // `rank_rows`: the rows of one micro-batch on this rank (the P shifted blocks of a step must tile
  // them: P is cut to a divisor). Samplers are seeded rank_seed + 5, + 6, + 7 where rank_seed is the
  // run seed plus the rank; SeqPE's dropout stream moves from its seed to its seed plus the rank.
  SeqPeObjective(seqpe::SeqPe& pe, seqpe::SeqPeOptions options, int64_t rank_rows, uint64_t rank_seed, int rank);

  engine::Tensor step_loss() override;
  // The last step's unweighted losses, "contrastive_loss" (L_ct) and "transfer_loss" (L_tr), each
  // when that step computed it (this rank's values: the training curves' auxiliary terms).
  nlohmann::json log_fields() override;
  std::map<std::string, std::pair<uint64_t, uint64_t>> generator_states() const override;
  void restore_generators(const std::map<std::string, std::pair<uint64_t, uint64_t>>& states) override;
  int64_t draws() const override { return draws_; }
  void replay(int64_t draws) override;

 private:
  void draw();

  seqpe::SeqPe& pe_;
  seqpe::MainPositionSampler main_sampler_;
  seqpe::ContrastiveSampler contrastive_sampler_;
  seqpe::TransferSampler transfer_sampler_;
  seqpe::MainPositions main_;
  seqpe::ContrastiveBatch contrastive_;
  seqpe::TransferBatch transfer_;
  seqpe::AuxiliaryLosses last_losses_;  // detached: read back only when a line is logged
  int64_t draws_ = 0;
};

}  // namespace apps::train
