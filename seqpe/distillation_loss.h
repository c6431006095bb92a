// The knowledge-distillation ("transfer") loss of SeqPE, docs/method.md#distillation-loss: the similarity structure among
// the embeddings of in-range positions (teacher) must be reproduced by the same index pattern
// shifted out of range (student), a translation-invariance regulariser.
//
// Legend: B = offsets (B_tr), n = n_t (positions per offset), D = D_out, H = heads, E = D / H.
//
// For each offset b and head h, with E_T, E_S the (n, E) slices of head h:
//   S_T = E_T E_Tᵀ,  S_S = E_S E_Sᵀ                       (n, n) dot-product similarities
//   log P_T = log_softmax(S_T) row-wise, log P_S likewise   (logit scale 1)
//   loss = KL(P_T ‖ P_S) + KL(P_S ‖ P_T)                    (β = 1), teacher detached in both
// Each KL is PyTorch's kl_div reduction 'mean': the sum of p (log p − log q) over all B·H·n·n
// elements divided by B·H·n·n, not a per-row batchmean; copied to match the reference magnitudes.
// The teacher gets no gradient: only the student's embeddings learn from this loss.
#pragma once

#include "engine/tensor.h"

namespace seqpe {

using engine::Tensor;

// teacher, student: (B, n, D) with D divisible by heads -> scalar.
Tensor distillation_loss(const Tensor& teacher, const Tensor& student, int64_t heads);

}  // namespace seqpe
