// How an op reaches its CUDA kernels. The ops library is built with CUDA kernels (ENGINE_CUDA, or
// the emulator build ops_emu) or without them; each op's CUDA branch sits inside
// `#if ENGINE_OPS_CUDA`, and a build without kernels throws a clear error there instead:
//
//   if (x.device().is_cuda()) {
//   #if ENGINE_OPS_CUDA
//     cuda::layernorm_forward(...);
//   #else
//     throw_no_cuda_kernels("layer_norm");
//   #endif
//   }
#pragma once

#ifndef ENGINE_OPS_CUDA
#define ENGINE_OPS_CUDA 0
#endif

namespace ops {

[[noreturn]] void throw_no_cuda_kernels(const char* op);

}  // namespace ops
