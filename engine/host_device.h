// ENGINE_HOST_DEVICE marks a small inline function that both the CPU code and CUDA kernels call
// (random numbers, bf16 rounding): __host__ __device__ under nvcc, nothing for g++ (which also
// builds the kernels under the emulator).
#pragma once

#if defined(__CUDACC__)
#define ENGINE_HOST_DEVICE __host__ __device__
#else
#define ENGINE_HOST_DEVICE
#endif
