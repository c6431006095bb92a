// Conversion between f32 and bfloat16 on the device, for the cuDNN attention path
// (ops/cuda/attention_cudnn.h), whose fused kernels read and write only fp16/bf16. A bf16 value is
// held as its 16-bit pattern (the upper half of the f32 pattern), so the kernels need no cuda_bf16.h
// and also run under the kernel emulator.
//
//   N = number of elements
#pragma once

#include <cstdint>

#include "engine/cuda/cuda_api.h"

namespace ops::cuda {

// out[i] = in[i] rounded to the nearest bf16, ties to even (NaN stays NaN, ±inf stays ±inf).
// in: (N) f32 -> out: (N) bf16 bit patterns
void f32_to_bf16(uint16_t* out, const float* in, int64_t n, cudaStream_t stream);

// out[i] = in[i] exactly (every bf16 is an f32).
// in: (N) bf16 bit patterns -> out: (N) f32
void bf16_to_f32(float* out, const uint16_t* in, int64_t n, cudaStream_t stream);

}  // namespace ops::cuda
