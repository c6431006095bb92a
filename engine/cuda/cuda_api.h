// The one include for code that talks to CUDA. In the real build (engine_cuda) it is the CUDA
// toolkit: the runtime and cuBLAS. In the emulated build (engine_cuda_emu, ENGINE_CUDA_EMU defined)
// it is the kernel emulator, which supplies the same names on the host. The kernel-writing macros
// below mean the same thing in both (engine/emu/kernel_api.h documents them):
//   ENGINE_SHARED(type, name, count), ENGINE_SHARED_2D(type, name, rows, cols),
//   ENGINE_DYNAMIC_SHARED(type, name), ENGINE_LAUNCH(kernel, grid, block, smem_bytes, stream, args...)
#pragma once

#if defined(ENGINE_CUDA_EMU)

#include "engine/emu/cuda_emu.h"

#else

#include <cublas_v2.h>
#include <cuda_runtime.h>

#if defined(__CUDACC__)
#include "engine/cuda/check.h"

#define ENGINE_SHARED(type, name, count) __shared__ type name[count]
#define ENGINE_SHARED_2D(type, name, rows, cols) __shared__ type name[rows][cols]
#define ENGINE_DYNAMIC_SHARED(type, name)                        \
  extern __shared__ __align__(16) unsigned char engine_dynamic_shared_[]; \
  type* const name = reinterpret_cast<type*>(engine_dynamic_shared_)
#define ENGINE_LAUNCH(kernel, grid, block, smem_bytes, stream, ...)         \
  do {                                                                      \
    kernel<<<grid, block, smem_bytes, stream>>>(__VA_ARGS__);               \
    CUDA_CHECK(cudaGetLastError());                                         \
  } while (0)
#endif

#endif

// True in the emulated build.
namespace engine::cuda {
#if defined(ENGINE_CUDA_EMU)
constexpr bool kEmulated = true;
#else
constexpr bool kEmulated = false;
#endif
}  // namespace engine::cuda
