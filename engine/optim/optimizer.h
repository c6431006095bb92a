// Optimizer: the base of AdamW and SGD, as torch.optim.Optimizer.
//
// Parameters come in groups, each with its own learning rate and weight decay (the usual split:
// matrices decay, biases and norm gains do not). Every parameter has a name (Module's dotted path),
// so the per-parameter buffers (AdamW's moments, SGD's momentum) are saved as named tensors
// "<parameter>.<buffer>" next to a scalar "step": a checkpoint writes state_dict() as it writes a
// model's, and load_state_dict() continues the identical trajectory.
//
// Buffers are allocated once, when the optimizer is built, with the shape, dtype and device of
// their parameter; step() allocates no tensor memory. All parameters of one optimizer live on one
// device. Each step makes one fused multi-tensor update per group through that device's Backend
// (engine/backend.h), under NoGradGuard.
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

// The parameters of one group that have a gradient, index-aligned with their gradients and
// buffers: what one fused update of an optimizer takes.
struct UpdateBatch {
  std::vector<Tensor> params, grads;
  std::vector<std::vector<Tensor>> buffers;  // [buffer in buffer_names order][parameter]
};

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
  // Validates the groups (defined, floating, contiguous, unique names, all on one device) and
  // allocates zeroed buffers `buffer_names` for each parameter.
  Optimizer(const char* name, std::vector<ParamGroup> groups, std::vector<std::string> buffer_names);

  // Updates the batch's parameters (one group's, all with gradients) in place. `step` counts this
  // update (1 for the first). Called under NoGradGuard; every tensor is contiguous and on device(),
  // and each gradient and buffer has its parameter's shape and dtype.
  virtual void update(const ParamGroup& group, const UpdateBatch& batch, int64_t step) = 0;

  // Where the parameters live (the CPU for an optimizer without parameters).
  Device device() const { return device_; }

 private:
  const char* name_;
  std::vector<ParamGroup> groups_;
  std::vector<std::string> buffer_names_;
  std::vector<std::vector<Tensor>> buffers_;  // [parameter in group order][buffer]
  Device device_ = Device::cpu();
  UpdateBatch batch_;  // reused by step(), so that its vectors keep their capacity
  int64_t step_ = 0;
};

}  // namespace engine::optim
