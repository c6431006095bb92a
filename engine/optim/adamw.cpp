#include "engine/optim/adamw.h"

#include <cmath>

namespace engine::optim {

namespace {

// The per-step constants, computed in double and rounded once to the parameter's type (as torch
// passes Python floats to its kernels).
struct AdamWStepConstants {
  double decay;                     // 1 - lr * weight_decay
  double beta1, beta2, eps;
  double step_size;                 // lr / (1 - beta1^t)
  double bias_correction2_sqrt;     // sqrt(1 - beta2^t)
};

// One fused pass over n elements: decay, both moments, and the parameter update. Elementwise, so
// the result does not depend on how OpenMP splits the range.
template <typename T>
void adamw_update_kernel(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, int64_t n, const AdamWStepConstants& c) {
  const T decay = T(c.decay), beta1 = T(c.beta1), beta2 = T(c.beta2), eps = T(c.eps);
  const T one_minus_beta1 = T(1 - c.beta1), one_minus_beta2 = T(1 - c.beta2);
  const T step_size = T(c.step_size), bias_correction2_sqrt = T(c.bias_correction2_sqrt);
#pragma omp parallel for schedule(static) if (n > (1 << 15))
  for (int64_t i = 0; i < n; ++i) {
    const T g = grad[i];
    const T m = beta1 * exp_avg[i] + one_minus_beta1 * g;
    const T v = beta2 * exp_avg_sq[i] + one_minus_beta2 * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    const T denom = std::sqrt(v) / bias_correction2_sqrt + eps;
    param[i] = param[i] * decay - step_size * (m / denom);
  }
}

}  // namespace

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions options)
    : Optimizer("AdamW", std::move(groups), {"exp_avg", "exp_avg_sq"}), options_(options) {
  ENGINE_CHECK(options_.beta1 >= 0 && options_.beta1 < 1 && options_.beta2 >= 0 && options_.beta2 < 1,
               "AdamW: betas must lie in [0, 1), got (", options_.beta1, ", ", options_.beta2, ")");
  ENGINE_CHECK(options_.eps >= 0, "AdamW: eps must be non-negative, got ", options_.eps);
}

void AdamW::update(const ParamGroup& group, const Tensor& param, const Tensor& grad, std::vector<Tensor>& buffers,
                   int64_t step) {
  const AdamWStepConstants c{
      .decay = 1 - group.lr * group.weight_decay,
      .beta1 = options_.beta1,
      .beta2 = options_.beta2,
      .eps = options_.eps,
      .step_size = group.lr / (1 - std::pow(options_.beta1, double(step))),
      .bias_correction2_sqrt = std::sqrt(1 - std::pow(options_.beta2, double(step))),
  };
  ENGINE_DISPATCH_FLOAT(param.dtype(), "AdamW", [&] {
    adamw_update_kernel<scalar_t>(param.data<scalar_t>(), grad.data<scalar_t>(), buffers[0].data<scalar_t>(),
                                  buffers[1].data<scalar_t>(), param.numel(), c);
  });
}

}  // namespace engine::optim
