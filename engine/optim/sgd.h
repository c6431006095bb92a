// SGD with momentum, as torch.optim.SGD with dampening 0. Per parameter p with gradient g, with the
// group's lr and weight_decay:
//
//   d = g + weight_decay * p                          (L2 decay, through the momentum)
//   b = momentum * b + d, b starting at 0             (only when momentum > 0)
//   d = nesterov ? d + momentum * b : b               (only when momentum > 0)
//   p = p - lr * d
//
// Buffer: "momentum_buffer" (b) when momentum > 0, none otherwise.
#pragma once

#include "engine/optim/optimizer.h"

namespace engine::optim {

struct SgdOptions {
  double momentum = 0;
  bool nesterov = false;  // needs momentum > 0
};

class Sgd final : public Optimizer {
 public:
  explicit Sgd(std::vector<ParamGroup> groups, SgdOptions options = {});

  const SgdOptions& options() const { return options_; }

 private:
  void update(const ParamGroup& group, const UpdateBatch& batch, int64_t step) override;

  SgdOptions options_;
};

}  // namespace engine::optim
