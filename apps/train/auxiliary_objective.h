// An objective the trainer adds to the task's loss every step, with its own random state: SeqPE's
// contrastive and distillation losses (apps/train/seqpe_objective.h) are one. Diagnostics that ride
// along with the step (a quantity logged, not trained) belong here too: log_fields() is merged
// into each logged metrics line.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "engine/tensor.h"

namespace apps::train {

class AuxiliaryObjective {
 public:
  virtual ~AuxiliaryObjective() = default;

  // Called before each forward of the task (once per micro-batch; the forward may consume what it
  // prepares): the weighted loss to add to that micro-batch's task loss, or an undefined tensor.
  virtual engine::Tensor step_loss() = 0;
  // Extra fields of a logged metrics line (step, loss, lr are the trainer's).
  virtual nlohmann::json log_fields() { return nlohmann::json::object(); }

  // Generators (seed, offset) saved in a checkpoint and restored on resume, by name.
  virtual std::map<std::string, std::pair<uint64_t, uint64_t>> generator_states() const = 0;
  virtual void restore_generators(const std::map<std::string, std::pair<uint64_t, uint64_t>>& states) = 0;
  // Micro-batches drawn for so far (saved); replay(n) on a fresh objective reaches the same state.
  virtual int64_t draws() const = 0;
  virtual void replay(int64_t draws) = 0;
};

}  // namespace apps::train
