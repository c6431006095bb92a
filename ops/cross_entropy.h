// Fused softmax + negative log-likelihood: the logits' gradient (softmax - target) is computed in
// one pass, never materialising log-probabilities as a separate graph node. Two versions:
// cross_entropy keeps the logits for its backward (for callers that keep using them), and
// cross_entropy_consuming, the fused classifier, computes the gradient with the loss and may write
// it over the logits (for a training loss whose logits are not needed afterwards).
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

// The fused classifier (llm.c's fused_classifier): the loss of cross_entropy, bit for bit, and in the
// same pass over each row the logits' gradient for an upstream gradient of 1, which the backward
// only scales by the upstream gradient (no pass at all when that is 1, as loss.backward() seeds).
// Neither the logits nor their softmax are kept for the backward: one (..., V) buffer, the gradient.
//
// It consumes the logits: pass a temporary or std::move the only handle. When nothing else holds
// them (no other Tensor handle or view of their storage, which includes every autograd node that
// saved them) the gradient is written over them in place, saving a (..., V) buffer; otherwise (and
// for non-contiguous logits, whose contiguous copy is then overwritten) it goes to a fresh buffer,
// so a caller that kept the logits still reads them unchanged. Without grad mode or a logits that
// requires grad this is cross_entropy. The gradient with an upstream gradient g ≠ 1 is the
// gradient for 1 rounded once more (g · (softmax − target)), within an ulp of cross_entropy's.
Tensor cross_entropy_consuming(Tensor&& logits, const Tensor& targets, int64_t ignore_index = -100,
                               double label_smoothing = 0.0, Reduction reduction = Reduction::mean);

// Whether cross_entropy_consuming would write its gradient over these logits' storage: this is the
// only handle, no other tensor shares the storage, and they are contiguous.
bool logits_consumable(const Tensor& logits);

}  // namespace ops
