// Module (engine/module.h): registering parameters, buffers and children, dotted names, state
// dicts.
#include "engine/module.h"

#include "engine/autograd.h"

namespace engine {

Tensor& Module::register_parameter(const std::string& name, Tensor value) {
  ENGINE_CHECK(value.defined(), "register_parameter: parameter '", name, "' is undefined");
  value.requires_grad_(true);
  parameters_.emplace_back(name, std::make_unique<Tensor>(std::move(value)));
  return *parameters_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor value) {
  buffers_.emplace_back(name, std::make_unique<Tensor>(std::move(value)));
  return *buffers_.back().second;
}

void Module::collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out, bool buffers) const {
  for (const auto& [name, tensor] : buffers ? buffers_ : parameters_) out.emplace_back(prefix + name, *tensor);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", out, buffers);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", out, false);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, tensor] : named_parameters()) out.push_back(tensor);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", out, true);
  return out;
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> out;
  for (auto& [name, tensor] : named_parameters()) out[name] = tensor;
  for (auto& [name, tensor] : named_buffers()) out[name] = tensor;
  return out;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  NoGradGuard no_grad;
  std::map<std::string, Tensor> mine = state_dict();
  for (auto& [name, tensor] : mine) {
    auto found = state.find(name);
    if (found == state.end()) {
      ENGINE_CHECK(!strict, "load_state_dict: missing tensor '", name, "' (expected ", tensor.describe(), ")");
      continue;
    }
    ENGINE_CHECK(found->second.shape() == tensor.shape(), "load_state_dict: tensor '", name, "' has shape ",
                 found->second.shape_string(), " but the model expects ", tensor.shape_string());
    Tensor target = tensor;
    target.copy_(found->second);
  }
  if (strict)
    for (auto& [name, tensor] : state)
      ENGINE_CHECK(mine.count(name), "load_state_dict: unexpected tensor '", name, "' (", tensor.describe(),
                   ") that this model does not have");
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (auto& [name, tensor] : named_parameters()) n += tensor.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::zero_grad() {
  for (auto& [name, tensor] : named_parameters()) tensor.impl_ptr()->grad.reset();
}

void Module::to_(Device device) {
  for (auto& [name, parameter] : parameters_) {
    Tensor moved = parameter->detach().to(device);
    moved.requires_grad_();
    *parameter = moved;
  }
  for (auto& [name, buffer] : buffers_) *buffer = buffer->to(device);
  for (auto& [name, child] : children_) child->to_(device);
}

}  // namespace engine
