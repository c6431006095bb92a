// f32 GEMM on an AVX-512 micro-kernel of our own, for ops/cpu/gemm.cpp.
//
//   C = alpha · op(A) · op(B) + beta · C       op(A): (M, K)  op(B): (K, N)  C: (M, N), row-major
//
// The contract is gemm's (ops/cpu/gemm.h): leading dimensions, transposed operands read in place,
// beta == 0 never reads C. It exists because Eigen left a quarter of the GEMM time in
// repacking its operands per tile and in zero-filling C (docs/gemm.md has the design and the
// measurements). Built only where the compiler targets AVX-512 (ENGINE_NATIVE on such a machine);
// elsewhere gemm.cpp keeps Eigen.
#pragma once

#include <cstdint>

#include "ops/cpu/gemm.h"

namespace ops::cpu {

#ifdef __AVX512F__
inline constexpr bool have_sgemm_avx512 = true;
#else
inline constexpr bool have_sgemm_avx512 = false;
#endif

// M, N, K > 0. `threaded`: share the product among the OpenMP threads (false inside a parallel
// region). Each element sums over k in order, in blocks of 256 added onto C one after the other, so
// its value depends on its row of op(A), its column of op(B), alpha and beta only: never on M, N, the
// thread count or which part of C a call covers. The epilogue (gemm.h), when given, sees 12-row
// blocks of a tile's columns right after their last depth block.
void sgemm_avx512(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, bool threaded,
                  const GemmEpilogue& epilogue = {});

}  // namespace ops::cpu
