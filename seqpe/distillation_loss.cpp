// The distillation loss of SeqPE (seqpe/distillation_loss.h): per-head similarity log-softmaxes and
// the symmetric KL.
#include "seqpe/distillation_loss.h"

#include "engine/error.h"
#include "ops/elementwise.h"
#include "ops/kl_div.h"
#include "ops/matmul.h"
#include "ops/softmax.h"

namespace seqpe {

namespace {
// (B, n, D) -> (B, H, n, n) row-wise log-softmax of the per-head dot-product similarities.
Tensor log_similarity(const Tensor& embeddings, int64_t heads) {
  const int64_t B = embeddings.size(0), n = embeddings.size(1), D = embeddings.size(2);
  Tensor per_head = embeddings.reshape({B, n, heads, D / heads}).permute({0, 2, 1, 3});  // (B, H, n, E)
  return ops::log_softmax(ops::matmul(per_head, per_head, false, true), -1);           // (B, H, n, n)
}
}  // namespace

Tensor distillation_loss(const Tensor& teacher, const Tensor& student, int64_t heads) {
  ENGINE_CHECK(teacher.dim() == 3 && teacher.shape() == student.shape(),
               "distillation_loss: expected teacher and student of one shape (B, n, D), got ", teacher.describe(),
               " and ", student.describe());
  ENGINE_CHECK(heads >= 1 && teacher.size(2) % heads == 0, "distillation_loss: width ", teacher.size(2),
               " is not divisible by ", heads, " heads");
  const Tensor log_p_teacher = log_similarity(teacher.detach(), heads);
  const Tensor log_p_student = log_similarity(student, heads);
  // ops::kl_div(log_q, log_p) = mean p (log p − log q) = KL(P ‖ Q) / elements.
  return ops::kl_div(log_p_student, log_p_teacher) + ops::kl_div(log_p_teacher, log_p_student);
}

}  // namespace seqpe
