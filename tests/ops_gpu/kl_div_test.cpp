// ops::kl_div on CUDA under a real GPU (skips without one), compared with the CPU op.
#include <doctest/doctest.h>

#include "common/cuda_ready.h"
#include "common/kl_div_checks.h"

TEST_CASE("kl_div on CUDA matches the CPU: loss and both gradients") {
  if (!cuda_ready()) return;
  kl_div_checks::check_forward_and_backward();
}
