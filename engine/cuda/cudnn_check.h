// CUDNN_CHECK(call): throws engine::Error naming the call, file and line, cuDNN's description of the
// status and cuDNN 9's own account of the failure (cudnnGetLastErrorString: which attribute, tensor or
// engine refused). The real cuDNN or the emulator's backend subset (engine/cuda/cudnn_api.h).
#pragma once

#include "engine/cuda/cudnn_api.h"

#include "engine/error.h"

namespace engine::cuda::detail {

[[noreturn]] inline void throw_cudnn_error(cudnnStatus_t status, const char* call, const char* file, int line) {
  char detail[1024] = "";
  cudnnGetLastErrorString(detail, sizeof(detail));
  throw Error(engine::detail::concat("cuDNN error at ", file, ":", line, ": ", call, " failed: ",
                                     cudnnGetErrorString(status), " (status ", int(status), ")",
                                     detail[0] ? ": " : "", detail));
}

}  // namespace engine::cuda::detail

#define CUDNN_CHECK(CALL)                                                                         \
  do {                                                                                            \
    const cudnnStatus_t engine_cudnn_status_ = (CALL);                                            \
    if (engine_cudnn_status_ != CUDNN_STATUS_SUCCESS)                                             \
      ::engine::cuda::detail::throw_cudnn_error(engine_cudnn_status_, #CALL, __FILE__, __LINE__); \
  } while (0)
