// General matrix multiply on the GPU through cuBLAS, with the row-major semantics of
// ops/cpu/gemm.h:
//
//   C = alpha · op(A) · op(B) + beta · C       op(X) = X or Xᵀ
//   op(A): (M, K)  op(B): (K, N)  C: (M, N)
//
// Every matrix is row-major with a leading dimension (elements between the starts of two rows). A
// is stored (M, K) with lda >= K, or (K, M) with lda >= M when trans_a; likewise B. cuBLAS is
// column-major: a row-major matrix is the column-major view of its transpose, so the wrappers ask
// cuBLAS for Cᵀ = op(B)ᵀ · op(A)ᵀ, passing B first. K must be >= 1 (callers fill empty products
// themselves); with beta == 0, C is not read.
//
// One cuBLAS handle per (device, stream), created on first use and kept for the life of the
// process: destroying handles during static destruction would race the CUDA runtime's own
// teardown (PyTorch keeps its handles for the same reason).
#pragma once

#include <cstdint>

#include "engine/cuda/cuda_api.h"

namespace ops::cuda {

// Whether f32 GEMMs may run on TF32 tensor cores (10-bit mantissa inputs, f32 accumulation):
// about 8x the f32 throughput on A100/H100 at ~1e-3 relative error. Off by default, so f32
// results match the CPU to ~1e-6; f64 GEMMs are never affected.
void set_allow_tf32(bool allow);
bool allow_tf32();

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc, cudaStream_t stream);

// batch products: matrix i of A starts at A + i · stride_a (likewise B and C); a stride of 0
// shares one matrix across the batch.
template <typename T>
void gemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                          int64_t lda, int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b, T beta, T* C,
                          int64_t ldc, int64_t stride_c, int64_t batch, cudaStream_t stream);

}  // namespace ops::cuda
