// Kullback-Leibler divergence between distributions given as log-probabilities.
#pragma once

#include "engine/tensor.h"

namespace ops {

using engine::Tensor;

// mean over all elements of p·(log p − log q), with log_q = input, log_p = target: PyTorch's
// F.kl_div(input, target, reduction='mean', log_target=True). Same shapes. Differentiable in both
// arguments; pass target.detach() for a teacher that gets no gradient (SeqPE's distillation).
Tensor kl_div(const Tensor& input_log_q, const Tensor& target_log_p);

}  // namespace ops
