// The contrastive (distance-alignment) loss of SeqPE, docs/method.md#contrastive-loss: each pivot's embedding must rank
// its nearest candidate (the label from contrastive_sampler.h) first among K candidates.
//
// Legend: B = pivots (B_ct), K = candidates per pivot, D = D_out (encoder output width).
//
//   logits[b, k] = e_pivot[b] · e_cand[b, k]       raw dot products over the full D vector:
//                                                  single head, no normalisation, no temperature
//   loss         = mean_b CrossEntropy(logits[b], label[b])
//
// The e vectors are the encoder's raw outputs, before any query/key projection of the main model.
#pragma once

#include "engine/tensor.h"

namespace seqpe {

using engine::Tensor;

// pivots: (B, D), candidates: (B, K, D), labels: (B) i64 in [0, K) -> scalar.
Tensor contrastive_loss(const Tensor& pivots, const Tensor& candidates, const Tensor& labels);

}  // namespace seqpe
