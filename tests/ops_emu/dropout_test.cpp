// ops::dropout on CUDA under the kernel emulator, compared with the CPU op.
#include <doctest/doctest.h>

#include "common/cuda_ready.h"
#include "common/dropout_checks.h"

TEST_CASE("dropout on CUDA draws the CPU's mask bitwise, forward and backward") {
  if (!cuda_ready()) return;
  dropout_checks::check_forward_and_backward();
}
