// main() of the tests that need a real GPU (label `gpu`): without a usable GPU it says why and
// exits with kGpuSkipReturnCode, which ctest (SKIP_RETURN_CODE in tests/CMakeLists.txt) reports
// as *skipped*, not passed; with one it runs the test cases as tests/main.cpp does.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <string>

#include "engine/cuda/init.h"

constexpr int kGpuSkipReturnCode = 77;

int main(int argc, char** argv) {
  std::string reason;
  if (!engine::cuda::available(&reason)) {
    std::printf("skipped: no usable GPU (%s)\n", reason.c_str());
    return kGpuSkipReturnCode;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
