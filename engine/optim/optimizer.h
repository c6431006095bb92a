// Optimizer: the base of AdamW and SGD, as torch.optim.Optimizer.
//
// Parameters come in groups, each with its own learning rate and weight decay (the usual split:
// matrices decay, biases and norm gains do not). Every parameter has a name (Module's dotted path),
// so the per-parameter buffers (AdamW's moments, SGD's momentum) are saved as named tensors
// "<parameter>.<buffer>" next to a scalar "step": a checkpoint writes state_dict() as it writes a
// model's, and load_state_dict() continues the identical trajectory.
//
// Buffers are allocated once, when the optimizer is built, with the shape and dtype of their
// parameter; step() allocates nothing. Updates are raw loops over contiguous host memory under
// NoGradGuard; a CUDA parameter is refused in check_optimizer_device(), the one place where the
// device dispatch will go.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace engine::optim {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct ParamGroup {
  NamedTensors params;      // (name, parameter); names unique across all groups
  double lr = 1e-3;         // current learning rate (a schedule rewrites it before each step)
  double weight_decay = 0;  // coefficient; how it is applied depends on the optimizer
  double initial_lr = 0;    // lr at construction: the base a schedule scales (set by Optimizer)
};

// The usual split for transformers (GPT-2, nanoGPT, timm): parameters with two or more dimensions
// (matrices, embeddings) decay; vectors (biases, norm gains) do not. Returns the decaying group
// first; an empty group is left out.
std::vector<ParamGroup> weight_decay_groups(const NamedTensors& params, double lr, double weight_decay);

// Throws unless `param` lives where optimizer kernels exist (the host, for now). `who` names the
// optimizer or function, `name` the parameter.
void check_optimizer_device(const char* who, const std::string& name, const Tensor& param);

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // Updates every parameter that has a gradient, then counts the step. Parameters without a
  // gradient are left as they are (as torch skips p.grad is None).
  void step();
  // Drops the gradients (torch's set_to_none), so that the next backward writes fresh ones.
  void zero_grad();

  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  // Number of step() calls so far, including those made before a load_state_dict().
  int64_t step_count() const { return step_; }

  // "step" (an i64 scalar) and "<parameter>.<buffer>" for each buffer. Buffers share storage with
  // the optimizer (as torch's state_dict does): serialise them, or clone to keep a snapshot.
  std::map<std::string, Tensor> state_dict() const;
  // Copies a state_dict() into this optimizer's buffers. Every tensor must be present with the
  // expected shape and none may be left over; errors name the tensor and the shapes.
  void load_state_dict(const std::map<std::string, Tensor>& state);

  const char* name() const { return name_; }

 protected:
  // Validates the groups (defined, floating, contiguous, unique names) and allocates zeroed buffers
  // `buffer_names` for each parameter.
  Optimizer(const char* name, std::vector<ParamGroup> groups, std::vector<std::string> buffer_names);

  // Updates one parameter in place from its gradient. `step` counts this update (1 for the first);
  // `buffers` holds the parameter's buffers in buffer_names order. Called under NoGradGuard with
  // host tensors; param, grad and buffers are contiguous, of the same shape and dtype.
  virtual void update(const ParamGroup& group, const Tensor& param, const Tensor& grad, std::vector<Tensor>& buffers,
                      int64_t step) = 0;

 private:
  const char* name_;
  std::vector<ParamGroup> groups_;
  std::vector<std::string> buffer_names_;
  std::vector<std::vector<Tensor>> buffers_;  // [parameter in group order][buffer]
  int64_t step_ = 0;
};

}  // namespace engine::optim
