// The bf16 GEMM kernels behind ops::cpu::gemm_bf16 (ops/cpu/gemm.h): f32 operands rounded to bf16
// (nearest even) while packing, products summed in f32, f32 C. Two kernels, each in its own file
// built with the instruction-set flags it needs (ops/CMakeLists.txt); ops/cpu/bf16_kernel.h says
// which one this CPU runs. The contract is sgemm_avx512's (ops/cpu/sgemm_avx512.h): M, N, K > 0,
// `threaded` shares the product among the OpenMP threads, each element sums k in order in depth
// blocks (of 512 here), so its value does not depend on M, N, the thread count or the part of C a
// call covers; the epilogue sees blocks of micro-tile rows right after their last depth block.
#pragma once

#include <cstdint>

#include "ops/cpu/gemm.h"

namespace ops::cpu {

// On AMX tiles (TDPBF16PS): 32 x 32 blocks of C in four tile registers. Call only where
// bf16_kernel_available(Bf16Kernel::amx), which also obtains Linux's tile-data permission.
void gemm_bf16_amx(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                   int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, bool threaded,
                   const GemmEpilogue& epilogue);

// On AVX512-BF16 (VDPBF16PS): 12 x 32 blocks of C in 24 zmm registers. Call only where
// bf16_kernel_available(Bf16Kernel::avx512_bf16).
void gemm_bf16_avx512(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                      int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, bool threaded,
                      const GemmEpilogue& epilogue);

}  // namespace ops::cpu
