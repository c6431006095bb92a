// Row-major GEMM: f32 on our AVX-512 kernel where the build targets AVX-512, otherwise (and for f64)
// on Eigen, which maps the raw buffers without copying and picks its kernel; bf16 products on the
// kernel ops/cpu/bf16_kernel.h picks. docs/gemm.md has the measurements behind each, and why large
// products are cut into tiles of C here.
#include "ops/cpu/gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "ops/cpu/bf16_kernel.h"
#include "ops/cpu/gemm_bf16.h"
#include "ops/cpu/sgemm_avx512.h"

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

// Large products are cut into tiles of C that threads take one at a time. The tile shape depends on
// M and N only, so every element of C is computed by the same single-threaded Eigen call whatever
// the thread count (results do not depend on it), and the threads meet once per product. Eigen's
// own threading synchronises per packed panel by spin-waiting, which on a shared machine (a
// descheduled partner) cost more than the product.
//
// Each tile packs its rows of A and columns of B again, K·(rows + cols) copies for K·rows·cols
// multiply-adds, so tiles are as large as possible (up to kMaxTile square) while there are at least
// kMinTiles of them to share, halving the longer side down to kMinTile.
constexpr int64_t kMaxTile = 512, kMinTile = 128, kMinTiles = 8;
// Below this many multiply-adds a product runs on the calling thread.
constexpr int64_t kParallelMacs = int64_t(1) << 21;

struct Tiling {
  int64_t rows, cols;      // of one tile (the last ones may be smaller)
  int64_t row_tiles, col_tiles;
};

Tiling tiling(int64_t M, int64_t N) {
  auto count = [](int64_t n, int64_t tile) { return (n + tile - 1) / tile; };
  int64_t rows = std::min(M, kMaxTile), cols = std::min(N, kMaxTile);
  while (count(M, rows) * count(N, cols) < kMinTiles && (rows > kMinTile || cols > kMinTile)) {
    int64_t& longer = rows >= cols ? rows : cols;
    longer = std::max(kMinTile, (longer / 2 + 15) / 16 * 16);  // multiples of 16: whole AVX-512 vectors
  }
  return {rows, cols, count(M, rows), count(N, cols)};
}

// Whether a product of this size shares its work among the OpenMP threads. Inside any parallel
// region, even an inactive one (if(false), one thread), it stays on the calling thread: a nested team
// there would create its threads afresh on every call.
bool share_among_threads(int64_t M, int64_t N, int64_t K) {
  return M * N * K >= kParallelMacs && omp_get_level() == 0;
}

// One product on the calling thread.
template <typename T>
void gemm_serial(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                 const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
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

// x rounded to the nearest bf16 (ties to even), kept as an f32; NaN stays NaN.
float round_to_bf16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return x;
  bits = (bits + 0x7fffu + ((bits >> 16) & 1u)) & 0xffff0000u;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}

// A stored matrix (rows x cols, leading dimension ld) rounded to bf16, as a packed f32 copy.
std::vector<float> rounded_to_bf16(const float* X, int64_t rows, int64_t cols, int64_t ld) {
  std::vector<float> copy(size_t(rows * cols));
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMacs / 16 && omp_get_level() == 0)
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) copy[size_t(i * cols + j)] = round_to_bf16(X[i * ld + j]);
  return copy;
}

}  // namespace

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc, const GemmEpilogue& epilogue) {
  if (M == 0 || N == 0) return;
  const bool threaded = share_among_threads(M, N, K);
  if constexpr (std::is_same_v<T, float> && have_sgemm_avx512) {
    if (K > 0) {
      sgemm_avx512(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threaded, epilogue);
      return;
    }
  }
  const Tiling t = tiling(M, N);
  const int64_t tiles = t.row_tiles * t.col_tiles;
  static const bool eigen_single_threaded = (Eigen::setNbThreads(1), true);  // the tiles are the threading
  (void)eigen_single_threaded;
  if (tiles == 1 || !threaded) {
    gemm_serial(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    if (epilogue) epilogue(0, 0, M, N);
    return;
  }
  // A tile (rows r, columns c) of C reads rows r of op(A) and columns c of op(B).
#pragma omp parallel for schedule(dynamic)
  for (int64_t tile = 0; tile < tiles; ++tile) {
    const int64_t row = (tile / t.col_tiles) * t.rows, col = (tile % t.col_tiles) * t.cols;
    const T* a_tile = A + (trans_a ? row : row * lda);
    const T* b_tile = B + (trans_b ? col * ldb : col);
    const int64_t rows = std::min(t.rows, M - row), cols = std::min(t.cols, N - col);
    gemm_serial(trans_a, trans_b, rows, cols, K, alpha, a_tile, lda, b_tile, ldb, beta, C + row * ldc + col, ldc);
    if (epilogue) epilogue(row, col, rows, cols);
  }
}

void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const GemmEpilogue& epilogue) {
  const Bf16Kernel kernel = bf16_kernel();
  if (M == 0 || N == 0 || K == 0) {  // (K == 0: gemm scales C by beta)
    gemm<float>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, epilogue);
    return;
  }
  if (kernel == Bf16Kernel::fp32) {  // the same numbers, slower: rounded copies on the f32 kernel
    const int64_t a_rows = trans_a ? K : M, a_cols = trans_a ? M : K;
    const int64_t b_rows = trans_b ? N : K, b_cols = trans_b ? K : N;
    const std::vector<float> a = rounded_to_bf16(A, a_rows, a_cols, lda), b = rounded_to_bf16(B, b_rows, b_cols, ldb);
    gemm<float>(trans_a, trans_b, M, N, K, alpha, a.data(), a_cols, b.data(), b_cols, beta, C, ldc, epilogue);
    return;
  }
#if ENGINE_BF16_KERNELS
  const bool threaded = share_among_threads(M, N, K);
  if (kernel == Bf16Kernel::amx)
    gemm_bf16_amx(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threaded, epilogue);
  else
    gemm_bf16_avx512(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threaded, epilogue);
#endif
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                          float, float*, int64_t, const GemmEpilogue&);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                           int64_t, double, double*, int64_t, const GemmEpilogue&);

}  // namespace ops::cpu
