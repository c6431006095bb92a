// The emulated cuBLAS GEMMs against a naive reference: every transpose combination, padded leading
// dimensions, strided batches, alpha/beta, and cuBLAS's argument validation.
//
// The reference works on logical row-major matrices op(A) (m x k) and op(B) (k x n); the test
// stores them the way cuBLAS expects (column-major, transposed when op is T, with padding rows
// filled with NaN), so a wrong index in the emulator shows up as a mismatch or a NaN.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "emu/device_vectors.h"
#include "engine/cuda/check.h"
#include "engine/cuda/cuda_api.h"

namespace {

struct Matrix {  // logical row-major rows x cols
  int rows, cols;
  std::vector<double> v;
  double at(int r, int c) const { return v[size_t(r * cols + c)]; }
};

Matrix random_matrix(int rows, int cols, std::mt19937& rng) {
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  Matrix m{rows, cols, std::vector<double>(size_t(rows * cols))};
  for (double& x : m.v) x = dist(rng);
  return m;
}

// Stores logical op(X) as cuBLAS's stored X: column-major, transposed for CUBLAS_OP_T, leading
// dimension ld, padding NaN. Returns the buffer of one matrix (ld * stored cols elements).
template <typename T>
std::vector<T> store(const Matrix& op_x, cublasOperation_t op, int ld) {
  const int stored_rows = op == CUBLAS_OP_N ? op_x.rows : op_x.cols;
  const int stored_cols = op == CUBLAS_OP_N ? op_x.cols : op_x.rows;
  std::vector<T> out(size_t(ld) * size_t(stored_cols), std::numeric_limits<T>::quiet_NaN());
  for (int c = 0; c < stored_cols; ++c)
    for (int r = 0; r < stored_rows; ++r)
      out[size_t(r + c * ld)] = T(op == CUBLAS_OP_N ? op_x.at(r, c) : op_x.at(c, r));
  return out;
}

cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const float* alpha,
                    const float* A, int lda, long long sa, const float* B, int ldb, long long sb, const float* beta,
                    float* C, int ldc, long long sc, int batch) {
  return cublasSgemmStridedBatched(h, ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
}
cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const double* alpha,
                    const double* A, int lda, long long sa, const double* B, int ldb, long long sb, const double* beta,
                    double* C, int ldc, long long sc, int batch) {
  return cublasDgemmStridedBatched(h, ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
}

// Runs a strided-batched GEMM through the emulator and checks every batch against the reference.
template <typename T>
void check_gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, int pad, int batch, T alpha, T beta,
                double tolerance) {
  std::mt19937 rng(uint32_t(m * 131 + n * 17 + k + int(ta) * 7 + int(tb) * 3 + batch));
  const int lda = (ta == CUBLAS_OP_N ? m : k) + pad, ldb = (tb == CUBLAS_OP_N ? k : n) + pad, ldc = m + pad;
  const long long stride_a = (long long)lda * (ta == CUBLAS_OP_N ? k : m) + 3;  // gaps between batches
  const long long stride_b = (long long)ldb * (tb == CUBLAS_OP_N ? n : k) + 5;
  const long long stride_c = (long long)ldc * n + 7;
  std::vector<T> a_host(size_t(stride_a * batch), T(0)), b_host(size_t(stride_b * batch), T(0));
  std::vector<T> c_host(size_t(stride_c * batch), std::numeric_limits<T>::quiet_NaN());
  std::vector<Matrix> as, bs, cs;
  for (int i = 0; i < batch; ++i) {
    as.push_back(random_matrix(m, k, rng));
    bs.push_back(random_matrix(k, n, rng));
    cs.push_back(random_matrix(m, n, rng));
    const std::vector<T> a = store<T>(as.back(), ta, lda), b = store<T>(bs.back(), tb, ldb);
    std::copy(a.begin(), a.end(), a_host.begin() + stride_a * i);
    std::copy(b.begin(), b.end(), b_host.begin() + stride_b * i);
    if (beta != T(0)) {  // with beta == 0, C stays NaN: cuBLAS must not read it
      const std::vector<T> c = store<T>(cs.back(), CUBLAS_OP_N, ldc);
      std::copy(c.begin(), c.end(), c_host.begin() + stride_c * i);
    }
  }
  T* A = to_device(a_host);
  T* B = to_device(b_host);
  T* C = to_device(c_host);
  cublasHandle_t handle;
  CUBLAS_CHECK(cublasCreate(&handle));
  if (batch == 1) {  // the plain entry points
    if constexpr (std::is_same_v<T, float>)
      CUBLAS_CHECK(cublasSgemm(handle, ta, tb, m, n, k, &alpha, A, lda, B, ldb, &beta, C, ldc));
    else
      CUBLAS_CHECK(cublasDgemm(handle, ta, tb, m, n, k, &alpha, A, lda, B, ldb, &beta, C, ldc));
  } else {
    CUBLAS_CHECK(gemm(handle, ta, tb, m, n, k, &alpha, A, lda, stride_a, B, ldb, stride_b, &beta, C, ldc, stride_c, batch));
  }
  const std::vector<T> result = to_host(C, c_host.size());
  for (int i = 0; i < batch; ++i) {
    double max_err = 0.0, max_ref = 0.0;
    for (int r = 0; r < m; ++r)
      for (int c = 0; c < n; ++c) {
        double ref = beta != T(0) ? double(beta) * double(T(cs[size_t(i)].at(r, c))) : 0.0;
        for (int l = 0; l < k; ++l)
          ref += double(alpha) * double(T(as[size_t(i)].at(r, l))) * double(T(bs[size_t(i)].at(l, c)));
        const double got = double(result[size_t(stride_c * i + r + c * ldc)]);
        max_err = std::max(max_err, std::fabs(got - ref));
        max_ref = std::max(max_ref, std::fabs(ref));
      }
    CAPTURE(i);
    CHECK(max_err <= tolerance * max_ref);
    // Padding rows of C (NaN) are untouched.
    if (pad > 0) CHECK(std::isnan(double(result[size_t(stride_c * i + m)])));
  }
  CUBLAS_CHECK(cublasDestroy(handle));
  CUDA_CHECK(cudaFree(A));
  CUDA_CHECK(cudaFree(B));
  CUDA_CHECK(cudaFree(C));
}

}  // namespace

TEST_CASE("emulated cuBLAS GEMM matches the naive reference for every transpose and padded leading dimensions") {
  for (cublasOperation_t ta : {CUBLAS_OP_N, CUBLAS_OP_T})
    for (cublasOperation_t tb : {CUBLAS_OP_N, CUBLAS_OP_T}) {
      CAPTURE(int(ta));
      CAPTURE(int(tb));
      // f32: sums of k products in double, rounded once; 1e-6 relative covers the f32 output rounding.
      check_gemm<float>(ta, tb, 7, 5, 11, 0, 1, 1.0f, 0.0f, 1e-6);
      check_gemm<float>(ta, tb, 7, 5, 11, 3, 1, 0.5f, -2.0f, 1e-6);
      check_gemm<float>(ta, tb, 6, 9, 4, 2, 3, -1.5f, 0.25f, 1e-6);
      check_gemm<double>(ta, tb, 5, 8, 13, 1, 2, 2.0, 0.0, 1e-13);
      check_gemm<double>(ta, tb, 9, 3, 6, 4, 1, 1.0, 1.0, 1e-13);
    }
}

TEST_CASE("emulated cuBLAS validates arguments as cuBLAS does") {
  float* A = nullptr;
  CUDA_CHECK(cudaMalloc(&A, 64 * sizeof(float)));
  cublasHandle_t handle;
  CUBLAS_CHECK(cublasCreate(&handle));
  const float one = 1.0f, zero = 0.0f;
  // lda must cover the stored rows: 4 rows (op N, m = 4) need lda >= 4.
  CHECK(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, 4, 2, 2, &one, A, 3, A, 2, &zero, A, 4) ==
        CUBLAS_STATUS_INVALID_VALUE);
  // With op T, A is stored k x m: lda >= k.
  CHECK(cublasSgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, 4, 2, 3, &one, A, 2, A, 3, &zero, A, 4) ==
        CUBLAS_STATUS_INVALID_VALUE);
  CHECK(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, 4, 2, 2, &one, A, 4, A, 2, &zero, A, 3) ==
        CUBLAS_STATUS_INVALID_VALUE);
  CHECK(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, -1, 2, 2, &one, A, 4, A, 2, &zero, A, 4) ==
        CUBLAS_STATUS_INVALID_VALUE);
  CHECK(cublasSgemmStridedBatched(handle, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, A, 2, 4, A, 2, 4, &zero, A, 2, 4, -1) ==
        CUBLAS_STATUS_INVALID_VALUE);
  CHECK_THROWS_WITH_AS(
      CUBLAS_CHECK(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, 4, 2, 2, &one, A, 3, A, 2, &zero, A, 4)),
      doctest::Contains("cublasSgemm(handle, CUBLAS_OP_N"), engine::Error);
  CHECK_THROWS_WITH_AS(
      CUBLAS_CHECK(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, 4, 2, 2, &one, A, 3, A, 2, &zero, A, 4)),
      doctest::Contains("(CUBLAS_STATUS_INVALID_VALUE)"), engine::Error);
  // Matrices must be device memory and lie inside their allocation.
  std::vector<float> host(64, 1.0f);
  CHECK_THROWS_WITH_AS(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, 4, 2, 2, &one, host.data(), 4, A, 2, &zero, A, 4),
                       doctest::Contains("cublasSgemm matrix A"), engine::Error);
  CHECK_THROWS_WITH_AS(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 8, &one, A, 8, A, 8, &zero, A, 9),
                       doctest::Contains("matrix C: 284 bytes"), engine::Error);
  CHECK_THROWS_WITH_AS(
      cublasSgemmStridedBatched(handle, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, A, 4, 16, A, 4, 16, &zero, A, 4, 16, 5),
      doctest::Contains("run past the end"), engine::Error);
  CUBLAS_CHECK(cublasDestroy(handle));
  CUDA_CHECK(cudaFree(A));
}
