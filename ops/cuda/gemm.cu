// cuBLAS GEMM wrappers (see ops/cuda/gemm.h): the row-major to column-major mapping, the handle
// pool and the TF32 switch. Host code only; under the emulator the same calls reach the emulated
// cuBLAS (engine/emu/cublas_api.h).
#include "ops/cuda/gemm.h"

#include <atomic>
#include <climits>
#include <map>
#include <mutex>
#include <utility>

#include "engine/cuda/check.h"
#include "engine/error.h"

namespace ops::cuda {

namespace {

std::atomic<bool> tf32_allowed{false};

struct CublasHandle {
  cublasHandle_t handle = nullptr;
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
};

// The handle for the current device and `stream`, with the math mode the TF32 switch asks for.
cublasHandle_t handle_for(cudaStream_t stream, bool f32) {
  static std::mutex mutex;
  static auto* handles = new std::map<std::pair<int, cudaStream_t>, CublasHandle>();  // kept until exit
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  const std::lock_guard<std::mutex> lock(mutex);
  CublasHandle& entry = (*handles)[{device, stream}];
  if (entry.handle == nullptr) {
    CUBLAS_CHECK(cublasCreate(&entry.handle));
    CUBLAS_CHECK(cublasSetStream(entry.handle, stream));
  }
  const cublasMath_t math = f32 && allow_tf32() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH;
  if (entry.math != math) {
    CUBLAS_CHECK(cublasSetMathMode(entry.handle, math));
    entry.math = math;
  }
  return entry.handle;
}

int as_int(int64_t value, const char* what) {
  ENGINE_CHECK(value >= 0 && value <= INT_MAX, "gemm: ", what, " = ", value, " does not fit cuBLAS's int");
  return int(value);
}

cublasOperation_t operation(bool transposed) { return transposed ? CUBLAS_OP_T : CUBLAS_OP_N; }

cublasStatus_t gemm_call(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                         const float* alpha, const float* A, int lda, long long sa, const float* B, int ldb,
                         long long sb, const float* beta, float* C, int ldc, long long sc, int batch) {
  if (batch == 1) return cublasSgemm(h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
  return cublasSgemmStridedBatched(h, ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
}
cublasStatus_t gemm_call(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                         const double* alpha, const double* A, int lda, long long sa, const double* B, int ldb,
                         long long sb, const double* beta, double* C, int ldc, long long sc, int batch) {
  if (batch == 1) return cublasDgemm(h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
  return cublasDgemmStridedBatched(h, ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
}

}  // namespace

void set_allow_tf32(bool allow) { tf32_allowed = allow; }
bool allow_tf32() { return tf32_allowed; }

template <typename T>
void gemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                          int64_t lda, int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b, T beta, T* C,
                          int64_t ldc, int64_t stride_c, int64_t batch, cudaStream_t stream) {
  if (M == 0 || N == 0 || batch == 0) return;
  ENGINE_CHECK(K >= 1, "gemm: K = 0 reaches cuBLAS; fill the empty product instead");
  const cublasHandle_t handle = handle_for(stream, sizeof(T) == sizeof(float));
  // Row-major C (M, N) is column-major Cᵀ (N, M): Cᵀ = op(B)ᵀ · op(A)ᵀ, where the stored row-major
  // B read column-major already is Bᵀ, so each operand keeps its own transpose flag.
  CUBLAS_CHECK(gemm_call(handle, operation(trans_b), operation(trans_a), as_int(N, "N"), as_int(M, "M"),
                         as_int(K, "K"), &alpha, B, as_int(ldb, "ldb"), stride_b, A, as_int(lda, "lda"), stride_a,
                         &beta, C, as_int(ldc, "ldc"), stride_c, as_int(batch, "batch")));
}

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc, cudaStream_t stream) {
  gemm_strided_batched<T>(trans_a, trans_b, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1, stream);
}

#define INSTANTIATE(T)                                                                                            \
  template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, int64_t, T, T*,    \
                        int64_t, cudaStream_t);                                                                   \
  template void gemm_strided_batched<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, int64_t,     \
                                        const T*, int64_t, int64_t, T, T*, int64_t, int64_t, int64_t, cudaStream_t);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace ops::cuda
