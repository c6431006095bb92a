// The kernel emulator: with this header, plain CUDA C++ (.cu files, no inline PTX, no wmma) compiles
// with g++ and runs on the CPU, so kernels can be tested on machines without a GPU. Include it
// through engine/cuda/cuda_api.h, which picks the real toolkit or the emulator.
//
//   kernel_api.h    threadIdx, __syncthreads, shuffles, votes, atomics, math, shared memory, launch
//   scheduler.h     blocks run in sequence, threads as fibers; unreachable barriers are reported
//   runtime_api.h   cudaMalloc/cudaMemcpy/streams/events over tracked host memory
//   cublas_api.h    cuBLAS GEMMs with cuBLAS's column-major contract and argument checks
// See docs/cuda.md for what the emulator catches and what it cannot.
#pragma once

#include "engine/emu/cublas_api.h"
#include "engine/emu/kernel_api.h"
#include "engine/emu/runtime_api.h"
