// SGD with momentum (engine/optim/sgd.h): its buffers and step constants; the update is the
// backend's.
#include "engine/optim/sgd.h"

#include "engine/backend.h"

namespace engine::optim {

namespace {

std::vector<std::string> sgd_buffer_names(const SgdOptions& options) {
  if (options.momentum > 0) return {"momentum_buffer"};
  return {};
}

}  // namespace

Sgd::Sgd(std::vector<ParamGroup> groups, SgdOptions options)
    : Optimizer("SGD", std::move(groups), sgd_buffer_names(options)), options_(options) {
  ENGINE_CHECK(options_.momentum >= 0, "SGD: momentum must be non-negative, got ", options_.momentum);
  ENGINE_CHECK(!options_.nesterov || options_.momentum > 0, "SGD: nesterov needs momentum > 0");
}

// One fused update of the whole group on its device.
void Sgd::update(const ParamGroup& group, const UpdateBatch& batch, int64_t /*step: SGD has no bias correction*/) {
  const SgdStep constants{
      .lr = group.lr, .weight_decay = group.weight_decay, .momentum = options_.momentum, .nesterov = options_.nesterov};
  const std::span<const Tensor> momentum_buffers =
      options_.momentum > 0 ? std::span<const Tensor>(batch.buffers[0]) : std::span<const Tensor>();
  backend_for(device().type).sgd_update(batch.params, batch.grads, momentum_buffers, constants);
}

}  // namespace engine::optim
