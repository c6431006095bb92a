// bf16 GEMM on AVX512-BF16 (ops/cpu/gemm_bf16.h): the blocked driver (ops/cpu/gemm_blocked.h) on a
// 12 x 32 micro-kernel of VDPBF16PS, which multiplies a pair of depths per lane: one step takes two
// vectors of a B panel (32 columns x 1 pair), 12 broadcast pairs of an A panel and 24 VDPBF16PS,
// twice the multiply-adds of the f32 kernel's step. Built with -mavx512bf16 (ops/CMakeLists.txt).
#include "ops/cpu/gemm_bf16.h"

#if defined(__AVX512BF16__)

#include "ops/cpu/gemm_bf16_kernels.h"
#include "ops/cpu/gemm_blocked.h"

namespace ops::cpu {

namespace {

using detail::Bf16Bits;

// Panels as the f32 kernel's with twice the depth per block (a depth block of bf16 takes the bytes
// of 256 f32): an A panel (12 x 512, 12 KiB) in L1 against B panels (512 x 32, 32 KiB) from L2.
struct Avx512Bf16Kernel {
  using Packed = Bf16Bits;
  static constexpr int64_t kRows = 12, kCols = 32, kDepthBlock = 512, kRowBlock = 8 * kRows, kDepthAlign = 32;
  static void pack_a(bool trans_a, const float* A, int64_t lda, int64_t rows, int64_t depth, Bf16Bits* out) {
    detail::pack_pairs(A, lda, !trans_a, rows, depth, kRows, true, out);
  }
  static void pack_b(bool trans_b, const float* B, int64_t ldb, int64_t depth, int64_t cols, Bf16Bits* out) {
    detail::pack_pairs(B, ldb, trans_b, cols, depth, kCols, true, out);
  }
  static void multiply(int64_t depth, const Bf16Bits* a, const Bf16Bits* b, float alpha, float beta, float* C,
                       int64_t ldc, int64_t rows, int64_t cols) {
    const uint32_t* a_pairs = reinterpret_cast<const uint32_t*>(a);  // pair p of row i at p·kRows + i
    const uint32_t* b_pairs = reinterpret_cast<const uint32_t*>(b);  // pair p of column j at p·kCols + j
    __m512 acc[kRows][2];
#pragma GCC unroll 12
    for (int64_t i = 0; i < kRows; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    const int64_t pairs = (depth + 1) / 2;
    for (int64_t p = 0; p < pairs; ++p, a_pairs += kRows, b_pairs += kCols) {
      const __m512bh b_low = __m512bh(_mm512_load_si512(b_pairs)), b_high = __m512bh(_mm512_load_si512(b_pairs + 16));
#pragma GCC unroll 12
      for (int64_t i = 0; i < kRows; ++i) {
        const __m512bh a_i = __m512bh(_mm512_set1_epi32(int(a_pairs[i])));
        acc[i][0] = _mm512_dpbf16_ps(acc[i][0], a_i, b_low);
        acc[i][1] = _mm512_dpbf16_ps(acc[i][1], a_i, b_high);
      }
    }
    alignas(64) float sums[kRows * kCols];
#pragma GCC unroll 12
    for (int64_t i = 0; i < kRows; ++i) {
      _mm512_store_ps(sums + i * kCols, acc[i][0]);
      _mm512_store_ps(sums + i * kCols + 16, acc[i][1]);
    }
    detail::store_block(sums, kCols, alpha, beta, C, ldc, rows, cols);
  }
  struct ThreadScope {};
};

}  // namespace

void gemm_bf16_avx512(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                      int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, bool threaded,
                      const GemmEpilogue& epilogue) {
  blocked_gemm<Avx512Bf16Kernel>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threaded, epilogue);
}

}  // namespace ops::cpu

#endif  // __AVX512BF16__
