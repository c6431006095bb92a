// Module: a named container of parameters, buffers and child modules, as torch.nn.Module.
// Names are dotted paths ("h.0.attn.c_attn.weight") so that state dicts match checkpoint formats.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace engine {

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Parameters (requires_grad leaves) and buffers (state saved with the model, not trained), in
  // registration order, recursively, with dotted names.
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<Tensor> parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  // Parameters then buffers: what a checkpoint holds.
  std::map<std::string, Tensor> state_dict() const;
  // Copies values into this module's tensors. Every name must be present with the same shape, and
  // no unknown name may be left over (unless strict is false); errors name the tensor and shapes.
  void load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);
  int64_t parameter_count() const;

  // Training mode (dropout on) or evaluation mode, recursively.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();
  // Moves every parameter and buffer, recursively, to `device` (parameters stay trainable leaves;
  // their gradients are dropped). Build on the CPU, then move, e.g. to Device::cuda().
  void to_(Device device);

 protected:
  // Registers a parameter (marks it requires_grad) / buffer / child and returns it.
  Tensor& register_parameter(const std::string& name, Tensor value);
  Tensor& register_buffer(const std::string& name, Tensor value);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> child) {
    children_.emplace_back(name, child);
    return child;
  }

 private:
  void collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out, bool buffers) const;
  // Deque-like stable storage: references returned by register_* stay valid.
  std::vector<std::pair<std::string, std::unique_ptr<Tensor>>> parameters_;
  std::vector<std::pair<std::string, std::unique_ptr<Tensor>>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace engine
