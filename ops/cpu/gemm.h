// General matrix multiply on the CPU with row-major (C/NumPy) semantics: f32 on our AVX-512 kernel
// (ops/cpu/sgemm_avx512.h) where the build targets AVX-512, f64 and other builds on Eigen's GEMM.
//
//   C = alpha · op(A) · op(B) + beta · C       op(X) = X or Xᵀ
//   op(A): (M, K)  op(B): (K, N)  C: (M, N)
//
// Every matrix is row-major with a leading dimension (the distance in elements between the starts
// of two consecutive rows), so views with a row stride other than the width need no copy. A is
// stored (M, K) with lda >= K, or (K, M) with lda >= M when trans_a; likewise B. With beta == 0, C
// is written without being read (it may hold garbage). Large products are shared among the OpenMP
// threads by tiles of C (on Eigen, each tile a single-threaded Eigen product; on AVX-512, see
// sgemm_avx512.h), and every element sums its products in an order that does not depend on the
// thread count, so neither do the results; called from inside a parallel region a product runs on
// the calling thread.
//
// An epilogue, when given, runs on each block of C once its sum is complete, while the block is still
// in cache: linear's bias and GELU cost no extra pass over C. Blocks are disjoint; a threaded product
// calls it from each thread, for the blocks that thread computed.
//
// gemm_bf16 is the mixed-precision product (PyTorch's CPU autocast to bf16, with f32 storage): the
// f32 operands are rounded to bf16 (nearest even) as they are packed, and the products are summed in
// f32 into an f32 C, on the kernel that ops/cpu/bf16_kernel.h picks: AMX, AVX512-BF16, or where
// the CPU has neither the f32 kernel on rounded copies of the operands (the same numbers, slower).
#pragma once

#include <cstdint>
#include <functional>

namespace ops::cpu {

// Rows [row, row + rows) and columns [col, col + cols) of C are final.
using GemmEpilogue = std::function<void(int64_t row, int64_t col, int64_t rows, int64_t cols)>;

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc, const GemmEpilogue& epilogue = {});

void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const GemmEpilogue& epilogue = {});

}  // namespace ops::cpu
