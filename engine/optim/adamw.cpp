// AdamW's step constants, computed once per group in double (engine/optim/adamw.h); the element-
// wise update is the backend's.
#include "engine/optim/adamw.h"

#include <cmath>

#include "engine/backend.h"

namespace engine::optim {

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions options)
    : Optimizer("AdamW", std::move(groups), {"exp_avg", "exp_avg_sq"}), options_(options) {
  ENGINE_CHECK(options_.beta1 >= 0 && options_.beta1 < 1 && options_.beta2 >= 0 && options_.beta2 < 1,
               "AdamW: betas must lie in [0, 1), got (", options_.beta1, ", ", options_.beta2, ")");
  ENGINE_CHECK(options_.eps >= 0, "AdamW: eps must be non-negative, got ", options_.eps);
}

// The step's constants in double, then one fused update of the whole group on its device.
void AdamW::update(const ParamGroup& group, const UpdateBatch& batch, int64_t step) {
  const AdamWStep constants{
      .decay = 1 - group.lr * group.weight_decay,
      .beta1 = options_.beta1,
      .beta2 = options_.beta2,
      .eps = options_.eps,
      .step_size = group.lr / (1 - std::pow(options_.beta1, double(step))),
      .bias_correction2_sqrt = std::sqrt(1 - std::pow(options_.beta2, double(step))),
  };
  backend_for(device().type).adamw_update(batch.params, batch.grads, batch.buffers[0], batch.buffers[1], constants);
}

}  // namespace engine::optim
