// The contrastive loss of SeqPE (seqpe/contrastive_loss.h): cross-entropy over pivot-candidate dot
// products.
#include "seqpe/contrastive_loss.h"

#include "engine/error.h"
#include "ops/cross_entropy.h"
#include "ops/matmul.h"

namespace seqpe {

Tensor contrastive_loss(const Tensor& pivots, const Tensor& candidates, const Tensor& labels) {
  ENGINE_CHECK(pivots.dim() == 2 && candidates.dim() == 3 && candidates.size(0) == pivots.size(0) &&
                   candidates.size(2) == pivots.size(1),
               "contrastive_loss: expected pivots (B, D) and candidates (B, K, D), got ", pivots.describe(), " and ",
               candidates.describe());
  ENGINE_CHECK(labels.dim() == 1 && labels.size(0) == pivots.size(0),
               "contrastive_loss: expected labels (B), got ", labels.describe());
  const int64_t B = pivots.size(0), K = candidates.size(1);
  // (B, K, D) · (B, D, 1) -> (B, K, 1): one batched matrix-vector product per pivot.
  // The logits are not needed after the loss: the fused classifier writes their gradient over them.
  return ops::cross_entropy_consuming(ops::matmul(candidates, pivots.unsqueeze(2)).reshape({B, K}), labels);
}

}  // namespace seqpe
