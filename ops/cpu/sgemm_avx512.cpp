// AVX-512 SGEMM: the blocked driver (ops/cpu/gemm_blocked.h) on the 12 x 32 f32 micro-kernel and
// packing of ops/cpu/sgemm_avx512_kernels.h. docs/gemm.md explains the sizes.
#include "ops/cpu/sgemm_avx512.h"

#ifdef __AVX512F__

#include "ops/cpu/gemm_blocked.h"
#include "ops/cpu/sgemm_avx512_kernels.h"

namespace ops::cpu {

namespace {

// An A panel (kRows x kDepthBlock, 12 KiB) stays in L1 while the kernel sweeps the tile's B panels
// (kDepthBlock x kCols, 32 KiB each, up to 512 KiB) from L2; the tile's packed A block (kRowBlock x
// kDepthBlock, 96 KiB) sits in L2 too. The other order (a B panel held in L1 against streaming A
// panels) measured 5-30 % slower: 32 + 12 KiB crowd the 48 KiB L1.
struct F32Kernel {
  using Packed = float;
  static constexpr int64_t kRows = detail::kRows, kCols = detail::kCols;
  static constexpr int64_t kDepthBlock = 256, kRowBlock = 8 * kRows, kDepthAlign = 1;
  static void pack_a(bool trans_a, const float* A, int64_t lda, int64_t rows, int64_t depth, float* out) {
    detail::pack_a(trans_a, A, lda, rows, depth, out);
  }
  static void pack_b(bool trans_b, const float* B, int64_t ldb, int64_t depth, int64_t cols, float* out) {
    detail::pack_b(trans_b, B, ldb, depth, cols, out);
  }
  static void multiply(int64_t depth, const float* a, const float* b, float alpha, float beta, float* C, int64_t ldc,
                       int64_t rows, int64_t cols) {
    detail::micro_kernel(depth, a, kRows, b, kCols, alpha, beta, C, ldc, rows, cols);
  }
  struct ThreadScope {};
};

}  // namespace

void sgemm_avx512(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, bool threaded,
                  const GemmEpilogue& epilogue) {
  blocked_gemm<F32Kernel>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threaded, epilogue);
}

}  // namespace ops::cpu

#endif  // __AVX512F__
