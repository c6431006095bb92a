// Gradient clipping by global L2 norm, as torch.nn.utils.clip_grad_norm_.
#pragma once

#include <vector>

#include "engine/tensor.h"

namespace engine::optim {

// Returns the L2 norm of all the parameters' gradients taken together and, when it exceeds
// max_norm, scales every gradient by max_norm / (norm + 1e-6). Parameters without a gradient are
// skipped. Squares are summed in double in a fixed order, so the result does not depend on the
// thread count (or, on CUDA, the grid). The gradients must all be on one device, where the norm
// and the scaling run; as in PyTorch, the norm comes back as a tensor on that device (a 0-d f64),
// so clipping on a GPU waits for nothing: read it (item()) only when it is needed. Call it once
// per set that is clipped on its own (SeqPE clips its encoder apart from the model).
Tensor clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

}  // namespace engine::optim
