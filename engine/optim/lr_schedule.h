// Learning-rate schedules: linear warm-up, then linear or cosine decay to a minimum.
//
// `step` is the number of optimizer steps already taken, so lr_at(0) is the rate of the first
// update (HF's LambdaLR and timm's schedulers count the same way). For a group whose base rate is
// `base` (its lr when the optimizer was built):
//
//   warm-up, step < warmup_steps:
//     lr = warmup_lr_init + (base - warmup_lr_init) * step / warmup_steps
//   decay, over [decay_start, total_steps], where decay_start = warmup_prefix ? warmup_steps : 0:
//     progress = (step - decay_start) / (total_steps - decay_start), clamped to [0, 1]
//     linear:  lr = min_lr + (base - min_lr) * (1 - progress)
//     cosine:  lr = min_lr + (base - min_lr) * (1 + cos(pi * progress)) / 2
//
// HF get_linear_schedule_with_warmup(warmup, total) is {linear, warmup, total, warmup_lr_init 0,
// min_lr 0, warmup_prefix true}; HF's cosine schedule is the same with cosine. timm's
// CosineLRScheduler(t_initial, lr_min, warmup_t, warmup_lr_init) with its default warmup_prefix=False
// and one cycle is {cosine, warmup_t, t_initial, warmup_lr_init, lr_min, warmup_prefix false}
// (the cosine then runs from step 0, so the rate drops at the end of warm-up, as in timm); with
// warmup_prefix=True it is {..., total_steps = warmup_t + t_initial, warmup_prefix true}.
#pragma once

#include <cstdint>

namespace engine::optim {

class Optimizer;

enum class LrDecay { linear, cosine };

struct LrScheduleConfig {
  LrDecay decay = LrDecay::cosine;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;     // step at which the rate reaches min_lr (and stays)
  double warmup_lr_init = 0;   // rate at step 0 of the warm-up
  double min_lr = 0;
  bool warmup_prefix = true;   // decay starts after the warm-up (HF) or at step 0 (timm's default)
};

class LrSchedule {
 public:
  explicit LrSchedule(const LrScheduleConfig& config);

  // The rate of the update made after `step` steps, for a group whose base rate is `base_lr`.
  double lr_at(int64_t step, double base_lr) const;
  // Sets every group's lr for the optimizer's next step, from its step count and the group's
  // initial_lr: call before each optimizer.step(). Resuming from a checkpoint needs nothing more.
  void apply(Optimizer& optimizer) const;

  const LrScheduleConfig& config() const { return config_; }

 private:
  LrScheduleConfig config_;
};

}  // namespace engine::optim
