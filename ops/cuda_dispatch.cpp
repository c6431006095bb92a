#include "ops/cuda_dispatch.h"

#include <string>

#include "engine/error.h"

namespace ops {

void throw_no_cuda_kernels(const char* op) {
  throw engine::Error(std::string(op) +
                      ": this build has no CUDA kernels; configure with -DENGINE_CUDA=ON (needs nvcc) to run ops on a GPU");
}

}  // namespace ops
