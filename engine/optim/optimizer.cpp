// The optimizer base (engine/optim/optimizer.h): parameter groups, checks before any update,
// zero_grad, state dicts.
#include "engine/optim/optimizer.h"

#include <set>

#include "engine/autograd.h"

namespace engine::optim {

std::vector<ParamGroup> weight_decay_groups(const NamedTensors& params, double lr, double weight_decay) {
  ParamGroup decay{.params = {}, .lr = lr, .weight_decay = weight_decay};
  ParamGroup no_decay{.params = {}, .lr = lr, .weight_decay = 0};
  for (const auto& named : params) (named.second.dim() >= 2 ? decay : no_decay).params.push_back(named);
  std::vector<ParamGroup> groups;
  for (ParamGroup* group : {&decay, &no_decay})
    if (!group->params.empty()) groups.push_back(std::move(*group));
  return groups;
}

Optimizer::Optimizer(const char* name, std::vector<ParamGroup> groups, std::vector<std::string> buffer_names)
    : name_(name), groups_(std::move(groups)), buffer_names_(std::move(buffer_names)) {
  NoGradGuard no_grad;
  std::set<std::string> seen;
  const std::string* first_param = nullptr;  // the parameter that fixed device_
  for (size_t g = 0; g < groups_.size(); ++g) {
    ParamGroup& group = groups_[g];
    ENGINE_CHECK(group.lr >= 0, name_, ": group ", g, " has a negative learning rate ", group.lr);
    ENGINE_CHECK(group.weight_decay >= 0, name_, ": group ", g, " has a negative weight decay ", group.weight_decay);
    group.initial_lr = group.lr;
    for (const auto& [param_name, param] : group.params) {
      ENGINE_CHECK(param.defined(), name_, ": parameter '", param_name, "' is undefined");
      if (first_param == nullptr) {
        first_param = &param_name;
        device_ = param.device();
      }
      ENGINE_CHECK(param.device() == device_, name_, ": parameter '", param_name, "' is ", param.describe(),
                   " but parameter '", *first_param, "' is on ", device_.str(),
                   "; all parameters of one optimizer must be on one device (use one optimizer per device)");
      ENGINE_CHECK(seen.insert(param_name).second, name_, ": parameter name '", param_name,
                   "' appears twice; each parameter must be in exactly one group");
      ENGINE_CHECK(is_floating(param.dtype()), name_, ": parameter '", param_name, "' must be floating, got ",
                   param.describe());
      ENGINE_CHECK(param.is_contiguous(), name_, ": parameter '", param_name, "' (", param.describe(),
                   ") is not contiguous; optimizers update parameters in place as flat arrays");
      std::vector<Tensor> buffers;
      for (size_t b = 0; b < buffer_names_.size(); ++b)
        buffers.push_back(Tensor::zeros(param.shape(), param.dtype(), param.device()));
      buffers_.push_back(std::move(buffers));
    }
  }
}

void Optimizer::step() {
  NoGradGuard no_grad;
  // Check everything before changing anything, so that a bad gradient leaves the model intact.
  for (const ParamGroup& group : groups_) {
    for (const auto& [param_name, param] : group.params) {
      const Tensor grad = param.grad();
      if (!grad.defined()) continue;
      ENGINE_CHECK(grad.shape() == param.shape() && grad.dtype() == param.dtype() && grad.device() == param.device(),
                   name_, ": gradient of '",
                   param_name, "' is ", grad.describe(), " but the parameter is ", param.describe());
      ENGINE_CHECK(grad.is_contiguous(), name_, ": gradient of '", param_name, "' (", grad.describe(),
                   ") is not contiguous; set_grad() a contiguous tensor");
    }
  }
  ++step_;
  batch_.buffers.resize(buffer_names_.size());
  size_t index = 0;
  for (const ParamGroup& group : groups_) {
    batch_.params.clear();
    batch_.grads.clear();
    for (std::vector<Tensor>& buffer : batch_.buffers) buffer.clear();
    for (const auto& [param_name, param] : group.params) {
      const Tensor grad = param.grad();
      if (grad.defined()) {
        batch_.params.push_back(param);
        batch_.grads.push_back(grad);
        for (size_t b = 0; b < buffer_names_.size(); ++b) batch_.buffers[b].push_back(buffers_[index][b]);
      }
      ++index;
    }
    if (!batch_.params.empty()) update(group, batch_, step_);
  }
  // Drop the batch's references, so that it does not keep gradients alive past zero_grad().
  batch_.params.clear();
  batch_.grads.clear();
  for (std::vector<Tensor>& buffer : batch_.buffers) buffer.clear();
}

void Optimizer::zero_grad() {
  for (ParamGroup& group : groups_)
    for (auto& [param_name, param] : group.params) param.impl_ptr()->grad.reset();
}

std::map<std::string, Tensor> Optimizer::state_dict() const {
  std::map<std::string, Tensor> out;
  out["step"] = Tensor::from_indices({step_}, {}, Dtype::i64);
  size_t index = 0;
  for (const ParamGroup& group : groups_) {
    for (const auto& [param_name, param] : group.params) {
      for (size_t b = 0; b < buffer_names_.size(); ++b) out[param_name + "." + buffer_names_[b]] = buffers_[index][b];
      ++index;
    }
  }
  return out;
}

void Optimizer::load_state_dict(const std::map<std::string, Tensor>& state) {
  NoGradGuard no_grad;
  auto find = [&](const std::string& key) -> const Tensor& {
    auto found = state.find(key);
    ENGINE_CHECK(found != state.end(), name_, " load_state_dict: missing tensor '", key,
                 "'; was the state written by a ", name_, " over the same parameters?");
    return found->second;
  };
  // Check everything before copying, so that a mismatched state leaves the optimizer intact.
  const Tensor& step = find("step");
  ENGINE_CHECK(step.numel() == 1 && !is_floating(step.dtype()), name_,
               " load_state_dict: tensor 'step' must be one integer, got ", step.describe());
  std::set<std::string> expected = {"step"};
  for (const ParamGroup& group : groups_) {
    for (const auto& [param_name, param] : group.params) {
      for (const std::string& buffer : buffer_names_) {
        const std::string key = param_name + "." + buffer;
        const Tensor& saved = find(key);
        ENGINE_CHECK(saved.shape() == param.shape(), name_, " load_state_dict: tensor '", key, "' has shape ",
                     saved.shape_string(), " but parameter '", param_name, "' has shape ", param.shape_string());
        ENGINE_CHECK(is_floating(saved.dtype()), name_, " load_state_dict: tensor '", key,
                     "' must be floating, got ", saved.describe());
        expected.insert(key);
      }
    }
  }
  for (const auto& [key, tensor] : state)
    ENGINE_CHECK(expected.count(key), name_, " load_state_dict: unexpected tensor '", key, "' (", tensor.describe(),
                 ") that this optimizer does not have");
  size_t index = 0;
  for (const ParamGroup& group : groups_) {
    for (const auto& [param_name, param] : group.params) {
      for (size_t b = 0; b < buffer_names_.size(); ++b)
        buffers_[index][b].copy_(state.at(param_name + "." + buffer_names_[b]));
      ++index;
    }
  }
  step_ = int64_t(step.item());
}

}  // namespace engine::optim
