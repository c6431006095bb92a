// Row-major GEMM on Eigen: maps the raw buffers without copying and lets Eigen pick its kernel.
// docs/gemm.md has the measurement behind choosing Eigen over OpenBLAS.
#include "ops/cpu/gemm.h"

// GCC 12 reports a false "may be used uninitialized" inside its own AVX-512 intrinsics when it
// inlines Eigen's f64 GEMM kernel (GCC bug 105593); silenced for this file only.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <Eigen/Core>

namespace ops::cpu {

namespace {

template <typename T>
using RowMajorMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0,
                               Eigen::OuterStride<>>;
template <typename T>
using MutableRowMajorMap =
    Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0, Eigen::OuterStride<>>;

// C = alpha · a · b + beta · C for already-transposed (lazy) operand expressions.
template <typename T, typename OpA, typename OpB>
void gemm_expr(const OpA& a, const OpB& b, T alpha, T beta, MutableRowMajorMap<T>& c) {
  if (beta == T(0)) {
    c.noalias() = alpha * (a * b);
    return;
  }
  if (beta != T(1)) c *= beta;
  c.noalias() += alpha * (a * b);
}

}  // namespace

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  MutableRowMajorMap<T> c(C, M, N, Eigen::OuterStride<>(ldc));
  if (K == 0) {
    if (beta == T(0)) c.setZero(); else c *= beta;
    return;
  }
  // A stored transposed is a row-major (K, M) matrix seen through .transpose(): no copy.
  const RowMajorMap<T> a(A, trans_a ? K : M, trans_a ? M : K, Eigen::OuterStride<>(lda));
  const RowMajorMap<T> b(B, trans_b ? N : K, trans_b ? K : N, Eigen::OuterStride<>(ldb));
  if (!trans_a && !trans_b) gemm_expr(a, b, alpha, beta, c);
  else if (!trans_a && trans_b) gemm_expr(a, b.transpose(), alpha, beta, c);
  else if (trans_a && !trans_b) gemm_expr(a.transpose(), b, alpha, beta, c);
  else gemm_expr(a.transpose(), b.transpose(), alpha, beta, c);
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                          float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                           int64_t, double, double*, int64_t);

}  // namespace ops::cpu
