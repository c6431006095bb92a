#include "engine/optim/sgd.h"

namespace engine::optim {

namespace {

// p -= lr * (g + weight_decay * p), without momentum.
template <typename T>
void sgd_update_kernel(T* param, const T* grad, int64_t n, double lr_d, double weight_decay_d) {
  const T lr = T(lr_d), weight_decay = T(weight_decay_d);
#pragma omp parallel for schedule(static) if (n > (1 << 15))
  for (int64_t i = 0; i < n; ++i) param[i] -= lr * (grad[i] + weight_decay * param[i]);
}

// The momentum update in one pass. The buffer starts at zero, so the first step sets it to the
// decayed gradient itself, as torch does.
template <typename T>
void sgd_momentum_update_kernel(T* param, const T* grad, T* buffer, int64_t n, double lr_d, double weight_decay_d,
                                double momentum_d, bool nesterov) {
  const T lr = T(lr_d), weight_decay = T(weight_decay_d), momentum = T(momentum_d);
#pragma omp parallel for schedule(static) if (n > (1 << 15))
  for (int64_t i = 0; i < n; ++i) {
    const T d = grad[i] + weight_decay * param[i];
    const T b = momentum * buffer[i] + d;
    buffer[i] = b;
    param[i] -= lr * (nesterov ? d + momentum * b : b);
  }
}

std::vector<std::string> sgd_buffer_names(const SGDOptions& options) {
  if (options.momentum > 0) return {"momentum_buffer"};
  return {};
}

}  // namespace

SGD::SGD(std::vector<ParamGroup> groups, SGDOptions options)
    : Optimizer("SGD", std::move(groups), sgd_buffer_names(options)), options_(options) {
  ENGINE_CHECK(options_.momentum >= 0, "SGD: momentum must be non-negative, got ", options_.momentum);
  ENGINE_CHECK(!options_.nesterov || options_.momentum > 0, "SGD: nesterov needs momentum > 0");
}

void SGD::update(const ParamGroup& group, const Tensor& param, const Tensor& grad, std::vector<Tensor>& buffers,
                 int64_t /*step: SGD has no bias correction*/) {
  ENGINE_DISPATCH_FLOAT(param.dtype(), "SGD", [&] {
    if (options_.momentum > 0)
      sgd_momentum_update_kernel<scalar_t>(param.data<scalar_t>(), grad.data<scalar_t>(), buffers[0].data<scalar_t>(),
                                           param.numel(), group.lr, group.weight_decay, options_.momentum,
                                           options_.nesterov);
    else
      sgd_update_kernel<scalar_t>(param.data<scalar_t>(), grad.data<scalar_t>(), param.numel(), group.lr,
                                  group.weight_decay);
  });
}

}  // namespace engine::optim
