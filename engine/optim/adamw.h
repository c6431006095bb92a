// AdamW (Loshchilov & Hutter), exactly as torch.optim.AdamW with amsgrad=False. Per parameter p
// with gradient g, at step t (1 for the first update), with the group's lr and weight_decay:
//
//   p  = p * (1 - lr * weight_decay)                  decoupled decay, not through the moments
//   m  = beta1 * m + (1 - beta1) * g
//   v  = beta2 * v + (1 - beta2) * g * g
//   p  = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
//
// Buffers: "exp_avg" (m) and "exp_avg_sq" (v), the names torch uses. f32 and f64 parameters;
// each step is one fused multi-tensor update per group on the parameters' device. One difference
// from torch: t is the optimizer's step count, while torch counts per parameter; they differ only
// for a parameter that had no gradient at some earlier step.
#pragma once

#include "engine/optim/optimizer.h"

namespace engine::optim {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
};

class AdamW final : public Optimizer {
 public:
  // Each group carries its own lr and weight_decay (torch's default weight_decay is 0.01).
  explicit AdamW(std::vector<ParamGroup> groups, AdamWOptions options = {});

  const AdamWOptions& options() const { return options_; }

 private:
  void update(const ParamGroup& group, const UpdateBatch& batch, int64_t step) override;

  AdamWOptions options_;
};

}  // namespace engine::optim
