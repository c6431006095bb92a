// General matrix multiply on the GPU through cuBLASLt, with the row-major semantics of
// ops/cpu/gemm.h:
//
//   C = alpha · op(A) · op(B) + beta · C, then an optional epilogue    op(X) = X or Xᵀ
//   op(A): (M, K)  op(B): (K, N)  C: (M, N)
//
// Every matrix is row-major with a leading dimension (elements between the starts of two rows). A
// is stored (M, K) with lda >= K, or (K, M) with lda >= M when trans_a; likewise B. cuBLASLt is
// column-major: a row-major matrix is the column-major view of its transpose, so the wrappers ask
// for Cᵀ = op(B)ᵀ · op(A)ᵀ, passing B first. K must be >= 1 (callers fill empty products
// themselves); with beta == 0, C is not read.
//
// Types: f32 (compute in f32, or on TF32 tensor cores when allow_tf32()), f32 tensors with bf16
// operands (`bf16_operands`: A and B rounded to bf16, nearest even, into scratch copies; products
// summed in f32 into f32 C: the bf16 precision of ops/precision.h), and f64 (gradient checks).
//
// One cuBLASLt handle per device and one 32 MiB workspace per (device, stream) (what cuBLASLt's
// Hopper kernels ask for; from the caching allocator), made on first use and kept for the life of the
// process: freeing them during static destruction would race the CUDA runtime's own teardown. The
// algorithm for a problem (types, shapes, leading dims, epilogue, pointer alignments) is asked of
// cuBLASLt's heuristic once and cached.
#pragma once

#include <cstdint>

#include "engine/cuda/cuda_api.h"

namespace ops::cuda {

// Whether f32 GEMMs may run on TF32 tensor cores (10-bit mantissa inputs, f32 accumulation):
// about 8x the f32 throughput on A100/H100 at ~1e-3 relative error. Off by default, so f32
// results match the CPU to ~1e-6; f64 GEMMs and bf16 operands are never affected.
void set_allow_tf32(bool allow);
bool allow_tf32();

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc, cudaStream_t stream, bool bf16_operands = false);

// batch products: matrix i of A starts at A + i · stride_a (likewise B and C); a stride of 0
// shares one matrix across the batch.
template <typename T>
void gemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                          int64_t lda, int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b, T beta, T* C,
                          int64_t ldc, int64_t stride_c, int64_t batch, cudaStream_t stream,
                          bool bf16_operands = false);

// The epilogues cuBLASLt fuses into the GEMM, in the row-major terms above (C: (M, N)). Each runs
// on the f32 accumulator, after alpha and beta; GELU is GPT-2's tanh form.
enum class GemmEpilogue {
  bias,           // C += bias (N), broadcast over rows                        (cuBLASLt BIAS)
  bias_gelu,      // pre = C + bias; C = gelu(pre)                             (GELU_AUX_BIAS)
  gelu_backward,  // C = C ⊙ gelu'(pre)                                        (DGELU)
  bias_gradient,  // C as without; bias_gradient (M) = Σ_k op(A)[m, k]: with     (BGRADB)
                  // op(A) = dYᵀ in dW = dYᵀ·X, linear's bias gradient, unscaled by alpha
                  // (with bf16_operands it sums the rounded copy of A)
};

// The epilogue's vectors and matrix. pre: (M, N) with leading dimension ldc (written by bias_gelu,
// read by gelu_backward).
template <typename T>
struct GemmFusion {
  GemmEpilogue epilogue = GemmEpilogue::bias;
  const T* bias = nullptr;     // (N): bias, bias_gelu
  T* pre = nullptr;            // (M, N): bias_gelu, gelu_backward
  T* bias_gradient = nullptr;  // (M): bias_gradient
};

// gemm with `fusion`'s epilogue. Returns false, having done nothing, when cuBLASLt has no algorithm
// for it: T = f64, or what cuBLASLt requires of the epilogue's operands not met (pre's leading
// dimension ldc must be a multiple of 8). The caller then runs gemm and the epilogue's own kernel.
template <typename T>
[[nodiscard]] bool gemm_fused(const GemmFusion<T>& fusion, bool trans_a, bool trans_b, int64_t M, int64_t N,
                              int64_t K, T alpha, const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C,
                              int64_t ldc, cudaStream_t stream, bool bf16_operands = false);

}  // namespace ops::cuda
