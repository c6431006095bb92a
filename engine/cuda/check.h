// Error checks for CUDA runtime and cuBLAS calls: on failure they throw engine::Error naming the
// call, the file and line, and the library's own description of the error.
//   CUDA_CHECK(cudaMalloc(&ptr, bytes));
//   CUBLAS_CHECK(cublasSgemm(handle, ...));
// cuDNN and NCCL have their own (engine/cuda/cudnn_check.h, nccl_check.h): cuDNN exists only in the
// real build, NCCL also emulated (engine/emu/nccl_api.h).
#pragma once

#include "engine/cuda/cuda_api.h"
#include "engine/error.h"

namespace engine::cuda::detail {

[[noreturn]] inline void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
  throw Error(engine::detail::concat("CUDA error at ", file, ":", line, ": ", call, " failed: ",
                                     cudaGetErrorString(status), " (", cudaGetErrorName(status), ")"));
}

[[noreturn]] inline void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) {
  throw Error(engine::detail::concat("cuBLAS error at ", file, ":", line, ": ", call, " failed: ",
                                     cublasGetStatusString(status), " (", cublasGetStatusName(status), ")"));
}

}  // namespace engine::cuda::detail

#define CUDA_CHECK(CALL)                                                                          \
  do {                                                                                            \
    const cudaError_t engine_cuda_status_ = (CALL);                                               \
    if (engine_cuda_status_ != cudaSuccess)                                                       \
      ::engine::cuda::detail::throw_cuda_error(engine_cuda_status_, #CALL, __FILE__, __LINE__);   \
  } while (0)

#define CUBLAS_CHECK(CALL)                                                                        \
  do {                                                                                            \
    const cublasStatus_t engine_cublas_status_ = (CALL);                                          \
    if (engine_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                           \
      ::engine::cuda::detail::throw_cublas_error(engine_cublas_status_, #CALL, __FILE__, __LINE__); \
  } while (0)
