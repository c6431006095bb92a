// concat, split, stack, index_select and gather on CUDA under a real GPU (skips without one), compared with the CPU ops.
#include <doctest/doctest.h>

#include "common/cuda_ready.h"
#include "common/indexing_checks.h"

TEST_CASE("indexing ops on CUDA match the CPU exactly, forward and backward") {
  if (!cuda_ready()) return;
  indexing_checks::check_all();
}

TEST_CASE("index_select and gather on CUDA: out-of-range indices") {
  if (!cuda_ready()) return;
  indexing_checks::check_errors();
}
