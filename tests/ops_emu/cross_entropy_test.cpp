// ops::cross_entropy and the fused classifier ops::cross_entropy_consuming on CUDA under the kernel emulator,
// compared with the CPU op.
#include <doctest/doctest.h>

#include "common/cross_entropy_checks.h"
#include "common/cuda_ready.h"

TEST_CASE("cross_entropy on CUDA matches the CPU: every reduction, ignore_index, label smoothing") {
  if (!cuda_ready()) return;
  for (const auto& variant : cross_entropy_checks::kVariants)
    cross_entropy_checks::check_forward_and_backward(variant);
}

TEST_CASE("cross_entropy on CUDA: all targets ignored, invalid targets") {
  if (!cuda_ready()) return;
  for (const auto& variant : cross_entropy_checks::kVariants) {
    cross_entropy_checks::check_all_ignored(variant);
    cross_entropy_checks::check_invalid_target(variant);
  }
}

TEST_CASE("cross_entropy on CUDA: f32 gradients of saturated rows (logits near 100) agree with f64 to a few ulp") {
  if (!cuda_ready()) return;
  for (const auto& variant : cross_entropy_checks::kVariants)
    cross_entropy_checks::check_saturated_rows(variant, cross_entropy_checks::kCuda);
}
