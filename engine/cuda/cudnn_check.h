// CUDNN_CHECK(call): throws engine::Error naming the call, file and line and cuDNN's description of
// the failure. Real build only (the emulator has no cuDNN).
#pragma once

#include <cudnn.h>

#include "engine/error.h"

namespace engine::cuda::detail {

[[noreturn]] inline void throw_cudnn_error(cudnnStatus_t status, const char* call, const char* file, int line) {
  throw Error(engine::detail::concat("cuDNN error at ", file, ":", line, ": ", call, " failed: ",
                                     cudnnGetErrorString(status), " (status ", int(status), ")"));
}

}  // namespace engine::cuda::detail

#define CUDNN_CHECK(CALL)                                                                         \
  do {                                                                                            \
    const cudnnStatus_t engine_cudnn_status_ = (CALL);                                            \
    if (engine_cudnn_status_ != CUDNN_STATUS_SUCCESS)                                             \
      ::engine::cuda::detail::throw_cudnn_error(engine_cudnn_status_, #CALL, __FILE__, __LINE__); \
  } while (0)
