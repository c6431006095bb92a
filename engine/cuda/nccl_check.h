// NCCL_CHECK(call): throws engine::Error naming the call, file and line and NCCL's description of
// the failure (plus its last detailed message). Real NCCL or the emulated one (engine/cuda/nccl_api.h).
#pragma once

#include "engine/cuda/nccl_api.h"

#include "engine/error.h"

namespace engine::cuda::detail {

[[noreturn]] inline void throw_nccl_error(ncclResult_t result, const char* call, const char* file, int line) {
  const char* detail = ncclGetLastError(nullptr);
  throw Error(engine::detail::concat("NCCL error at ", file, ":", line, ": ", call, " failed: ",
                                     ncclGetErrorString(result), " (result ", int(result), ")",
                                     detail && *detail ? ": " : "", detail ? detail : ""));
}

}  // namespace engine::cuda::detail

#define NCCL_CHECK(CALL)                                                                          \
  do {                                                                                            \
    const ncclResult_t engine_nccl_result_ = (CALL);                                              \
    if (engine_nccl_result_ != ncclSuccess)                                                       \
      ::engine::cuda::detail::throw_nccl_error(engine_nccl_result_, #CALL, __FILE__, __LINE__);   \
  } while (0)
