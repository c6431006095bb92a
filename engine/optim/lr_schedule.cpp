// Learning-rate schedules (engine/optim/lr_schedule.h): linear warm-up, then linear or cosine
// decay.
#include "engine/optim/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "engine/optim/optimizer.h"

namespace engine::optim {

LrSchedule::LrSchedule(const LrScheduleConfig& config) : config_(config) {
  ENGINE_CHECK(config_.warmup_steps >= 0, "LrSchedule: warmup_steps must be non-negative, got ", config_.warmup_steps);
  const int64_t decay_start = config_.warmup_prefix ? config_.warmup_steps : 0;
  ENGINE_CHECK(config_.total_steps > decay_start, "LrSchedule: total_steps (", config_.total_steps,
               ") must exceed the step where decay starts (", decay_start, ")");
  ENGINE_CHECK(config_.min_lr >= 0 && config_.warmup_lr_init >= 0,
               "LrSchedule: min_lr and warmup_lr_init must be non-negative");
}

double LrSchedule::lr_at(int64_t step, double base_lr) const {
  const LrScheduleConfig& c = config_;
  if (step < c.warmup_steps)
    return c.warmup_lr_init + (base_lr - c.warmup_lr_init) * double(step) / double(c.warmup_steps);
  const int64_t decay_start = c.warmup_prefix ? c.warmup_steps : 0;
  const double progress =
      std::clamp(double(step - decay_start) / double(c.total_steps - decay_start), 0.0, 1.0);
  const double remaining = c.decay == LrDecay::linear ? 1 - progress : 0.5 * (1 + std::cos(std::numbers::pi * progress));
  return c.min_lr + (base_lr - c.min_lr) * remaining;
}

void LrSchedule::apply(Optimizer& optimizer) const {
  for (ParamGroup& group : optimizer.param_groups()) group.lr = lr_at(optimizer.step_count(), group.initial_lr);
}

}  // namespace engine::optim
