// Whether the CUDA backend this test program links can run: always for the emulator
// (engine_cuda_emu), only with a usable GPU for the real one (engine_cuda). Initialises it once.
// The real-GPU test programs never get here without a GPU: their main (tests/gpu_main.cpp) exits
// first with the code ctest reports as skipped. The early return guards a test run by hand:
//
//   TEST_CASE("layer norm on CUDA matches the CPU") {
//     if (!cuda_ready()) return;
//     ...
//   }
#pragma once

#include <doctest/doctest.h>

#include <string>

#include "engine/cuda/init.h"

inline bool cuda_ready() {
  static std::string reason;
  static const bool ready = [] {
    if (!engine::cuda::available(&reason)) return false;
    engine::cuda::init();
    return true;
  }();
  if (!ready) MESSAGE("skipping: no usable GPU (" << reason << ")");
  return ready;
}
