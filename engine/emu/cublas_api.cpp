// The emulated cuBLAS GEMMs (engine/emu/cublas_api.h): column-major products summed in double, with
// cuBLAS's argument checks and device-range checks.
#include "engine/emu/cublas_api.h"

#include <algorithm>
#include <string>

#include "engine/emu/device_memory.h"
#include "engine/emu/devices.h"
#include "engine/error.h"

struct EmulatedCublas {
  int device = 0;  // current when the handle was made: its calls must run there
  cudaStream_t stream = nullptr;
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
};

namespace {

// Element (row, col) of op(X), where X is stored column-major with leading dimension ld.
template <typename T>
T op_element(const T* X, cublasOperation_t op, int ld, long long row, long long col) {
  return op == CUBLAS_OP_N ? X[row + col * ld] : X[col + row * ld];
}

// Bytes spanned by a stored rows x cols column-major matrix with leading dimension ld.
size_t matrix_bytes(long long rows, long long cols, int ld, size_t element) {
  if (rows == 0 || cols == 0) return 0;
  return size_t((cols - 1) * ld + rows) * element;
}

template <typename T>
cublasStatus_t gemm_strided_batched(const char* name, cublasHandle_t handle, cublasOperation_t transa,
                                    cublasOperation_t transb, int m, int n, int k, const T* alpha, const T* A, int lda,
                                    long long strideA, const T* B, int ldb, long long strideB, const T* beta, T* C,
                                    int ldc, long long strideC, int batch_count) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  auto valid_op = [](cublasOperation_t op) { return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C; };
  // Stored shapes: A is m x k (N) or k x m (T); B is k x n (N) or n x k (T).
  const int a_rows = transa == CUBLAS_OP_N ? m : k, a_cols = transa == CUBLAS_OP_N ? k : m;
  const int b_rows = transb == CUBLAS_OP_N ? k : n, b_cols = transb == CUBLAS_OP_N ? n : k;
  if (!valid_op(transa) || !valid_op(transb) || m < 0 || n < 0 || k < 0 || batch_count < 0 ||
      lda < std::max(1, a_rows) || ldb < std::max(1, b_rows) || ldc < std::max(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0 || batch_count == 0) return CUBLAS_STATUS_SUCCESS;
  const std::string where = std::string("emulated ") + name;
  ENGINE_CHECK(handle->device == engine::emu::current_device(), where, ": the cuBLAS handle was made on device ", handle->device,
               " but the current device is ", engine::emu::current_device(), " (keep one handle per device)");
  engine::emu::check_stream_device(handle->stream, where.c_str());
  const size_t size = sizeof(T);
  auto span = [&](size_t one, long long stride) { return one + size_t(batch_count - 1) * size_t(stride) * size; };
  if (k > 0) {
    engine::emu::check_device_range(A, span(matrix_bytes(a_rows, a_cols, lda, size), strideA), (where + " matrix A").c_str());
    engine::emu::check_device_range(B, span(matrix_bytes(b_rows, b_cols, ldb, size), strideB), (where + " matrix B").c_str());
  }
  engine::emu::check_device_range(C, span(matrix_bytes(m, n, ldc, size), strideC), (where + " matrix C").c_str());
  const T a = *alpha, b = *beta;
  for (int batch = 0; batch < batch_count; ++batch) {
    const T* Ab = A + batch * strideA;
    const T* Bb = B + batch * strideB;
    T* Cb = C + batch * strideC;
#pragma omp parallel for if ((long long)m * n * k > (1 << 16))
    for (int col = 0; col < n; ++col)
      for (int row = 0; row < m; ++row) {
        double acc = 0.0;
        for (int i = 0; i < k; ++i)
          acc += double(op_element(Ab, transa, lda, row, i)) * double(op_element(Bb, transb, ldb, i, col));
        T& c = Cb[row + (long long)col * ldc];
        c = b == T(0) ? T(a * T(acc)) : T(a * T(acc) + b * c);  // beta == 0: C is not read
      }
  }
  return CUBLAS_STATUS_SUCCESS;
}

}  // namespace

const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "the operation completed successfully";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
  }
  return "unknown error";
}

const char* cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  *handle = new EmulatedCublas{engine::emu::current_device()};
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t* stream) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  *stream = handle->stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t* mode) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  *mode = handle->math;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
                           const float* alpha, const float* A, int lda, const float* B, int ldb, const float* beta,
                           float* C, int ldc) {
  return gemm_strided_batched("cublasSgemm", handle, transa, transb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0,
                              1);
}

cublasStatus_t cublasDgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
                           const double* alpha, const double* A, int lda, const double* B, int ldb, const double* beta,
                           double* C, int ldc) {
  return gemm_strided_batched("cublasDgemm", handle, transa, transb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0,
                              1);
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                                         int n, int k, const float* alpha, const float* A, int lda, long long strideA,
                                         const float* B, int ldb, long long strideB, const float* beta, float* C, int ldc,
                                         long long strideC, int batch_count) {
  return gemm_strided_batched("cublasSgemmStridedBatched", handle, transa, transb, m, n, k, alpha, A, lda, strideA, B, ldb,
                              strideB, beta, C, ldc, strideC, batch_count);
}

cublasStatus_t cublasDgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                                         int n, int k, const double* alpha, const double* A, int lda, long long strideA,
                                         const double* B, int ldb, long long strideB, const double* beta, double* C,
                                         int ldc, long long strideC, int batch_count) {
  return gemm_strided_batched("cublasDgemmStridedBatched", handle, transa, transb, m, n, k, alpha, A, lda, strideA, B, ldb,
                              strideB, beta, C, ldc, strideC, batch_count);
}
