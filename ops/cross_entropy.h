// Fused softmax + negative log-likelihood: the logits' gradient (softmax - target) is computed in
// one pass, never materialising log-probabilities as a separate graph node.
#pragma once

#include "engine/tensor.h"

namespace ops {

using engine::Tensor;

enum class Reduction { mean, sum, none };

// logits: (..., V), targets: (...) i32/i64. Targets equal to ignore_index contribute nothing;
// `mean` divides by the number of non-ignored targets (0 when all are ignored, as PyTorch gives
// NaN: we return 0 to keep training loops simple and say so here). label_smoothing ε mixes the
// one-hot target with the uniform distribution: (1-ε)·onehot + ε/V. `none` returns (...) losses
// (0 at ignored positions).
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = -100,
                     double label_smoothing = 0.0, Reduction reduction = Reduction::mean);

}  // namespace ops
