// SeqPE's per-step samples, encoder forward and auxiliary losses for the trainer.
#include "apps/train/seqpe_objective.h"

#include <numeric>

namespace apps::train {

namespace {

seqpe::SeqPeOptions fit_blocks(seqpe::SeqPeOptions options, int64_t rank_rows) {
  int64_t& P = options.main_sampler.blocks_per_shifted_step;
  P = std::gcd(P, rank_rows);
  return options;
}

}  // namespace

SeqPeObjective::SeqPeObjective(seqpe::SeqPe& pe, seqpe::SeqPeOptions options, int64_t rank_rows, uint64_t rank_seed,
                               int rank)
    : pe_(pe), main_sampler_(fit_blocks(options, rank_rows).main_sampler, rank_seed + 5),
      contrastive_sampler_(options.contrastive, rank_seed + 6), transfer_sampler_(options.transfer, rank_seed + 7) {
  engine::Generator& dropout = pe_.dropout_generator();
  dropout.set_state(dropout.seed() + uint64_t(rank), 0);
}

void SeqPeObjective::draw() {
  main_ = main_sampler_.next();
  contrastive_ = contrastive_sampler_.next();
  transfer_ = transfer_sampler_.next();
  ++draws_;
}

engine::Tensor SeqPeObjective::step_loss() {
  draw();
  const seqpe::StepEncoding step = pe_.encode_step(main_, &contrastive_, &transfer_);
  const seqpe::AuxiliaryLosses losses = pe_.auxiliary_losses(step, &contrastive_, &transfer_);
  last_losses_ = {losses.contrastive.defined() ? losses.contrastive.detach() : engine::Tensor(),
                  losses.transfer.defined() ? losses.transfer.detach() : engine::Tensor(), engine::Tensor()};
  return losses.weighted;
}

nlohmann::json SeqPeObjective::log_fields() {
  nlohmann::json fields = nlohmann::json::object();
  if (last_losses_.contrastive.defined()) fields["contrastive_loss"] = last_losses_.contrastive.item();
  if (last_losses_.transfer.defined()) fields["transfer_loss"] = last_losses_.transfer.item();
  return fields;
}

std::map<std::string, std::pair<uint64_t, uint64_t>> SeqPeObjective::generator_states() const {
  const engine::Generator& dropout = pe_.dropout_generator();
  return {{"seqpe_dropout", {dropout.seed(), dropout.offset()}}};
}

void SeqPeObjective::restore_generators(const std::map<std::string, std::pair<uint64_t, uint64_t>>& states) {
  // Rank 0's state was saved: every rank has drawn as many numbers from its own seed.
  engine::Generator& dropout = pe_.dropout_generator();
  dropout.set_state(dropout.seed(), states.at("seqpe_dropout").second);
}

void SeqPeObjective::replay(int64_t draws) {
  while (draws_ < draws) draw();
}

}  // namespace apps::train
