// Clipping gradients by their global L2 norm (engine/optim/clip_grad.h).
#include "engine/optim/clip_grad.h"

#include "engine/autograd.h"
#include "engine/backend.h"

namespace engine::optim {

// Gathers the gradients (all on one device), then takes their norm and scales them through that
// device's backend.
Tensor clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  ENGINE_CHECK(max_norm > 0, "clip_grad_norm: max_norm must be positive, got ", max_norm);
  NoGradGuard no_grad;
  std::vector<Tensor> grads;
  size_t first_grad = 0;  // index in params of grads[0]
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor grad = params[i].grad();
    if (!grad.defined()) continue;
    ENGINE_CHECK(grad.is_contiguous(), "clip_grad_norm: gradient of params[", i, "] (", grad.describe(),
                 ") is not contiguous");
    ENGINE_CHECK(is_floating(grad.dtype()), "clip_grad_norm: gradient of params[", i, "] must be floating, got ",
                 grad.describe());
    if (grads.empty()) first_grad = i;
    ENGINE_CHECK(grads.empty() || grad.device() == grads[0].device(), "clip_grad_norm: gradient of params[", i,
                 "] is ", grad.describe(), " but that of params[", first_grad, "] is on ", grads[0].device().str(),
                 "; clip the gradients of each device apart");
    grads.push_back(grad);
  }
  // No gradient at all: the norm is 0, on the parameters' device like any other norm.
  if (grads.empty()) return Tensor::zeros({}, Dtype::f64, params.empty() ? Device::cpu() : params[0].device());
  const Device device = grads[0].device();
  Backend& backend = backend_for(device.type);
  const Tensor squared_norm = Tensor::empty({}, Dtype::f64, device), norm = Tensor::empty({}, Dtype::f64, device);
  backend.squared_norm(grads, squared_norm);
  backend.clip_by_norm_(grads, squared_norm, max_norm, norm);
  return norm;
}

}  // namespace engine::optim
