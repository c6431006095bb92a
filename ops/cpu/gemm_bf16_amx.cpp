// bf16 GEMM on AMX (ops/cpu/gemm_bf16.h): the blocked driver (ops/cpu/gemm_blocked.h) on a 32 x 32
// micro-kernel of TDPBF16PS. The block of C lives in four tile registers (16 x 16 f32 each); each
// step of 32 depths loads two A tiles (16 rows x 32 depths of bf16) and two B tiles (16 pairs x 16
// columns) and issues four tile products, 32 768 multiply-adds. Built with -mamx-tile -mamx-bf16
// -mavx512bf16 (ops/CMakeLists.txt); called only once Linux has granted the tile-data permission
// (ops/cpu/bf16_kernel.cpp).
#include "ops/cpu/gemm_bf16.h"

#if defined(__AVX512BF16__) && defined(__AMX_TILE__) && defined(__AMX_BF16__)

#include <atomic>

#include "ops/cpu/gemm_bf16_kernels.h"
#include "ops/cpu/gemm_blocked.h"

namespace ops::cpu {

namespace {

using bf16::Bf16Bits;

// The tile configuration (Intel SDM vol. 1, 3.3 "Intel AMX"; the LDTILECFG memory layout): palette
// 1, then bytes per row and rows of each of the 8 tiles. Here all 8 are 16 rows of 64 bytes: tiles
// 0-3 the C block (16 x 16 f32 each), 4-5 A (16 rows x 32 bf16), 6-7 B (16 pairs x 16 columns).
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t bytes_per_row[16] = {64, 64, 64, 64, 64, 64, 64, 64};
  uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};
static_assert(sizeof(TileConfig) == 64);

// A tile (16 rows x 64 bytes) per chunk of 32 depths: A (line-major, 32 rows) holds 1024 bf16 per
// chunk, its second tile 512 bf16 on; B (pair-major, 32 columns) 1024 per chunk, rows 128 bytes
// apart, its second tile 64 bytes on.
constexpr int64_t kChunkElements = 1024;

// An A panel (32 x 512 bf16, 32 KiB) against B panels of the same size from L2: the tile loads
// stream from L1 and L2 at a rate TDPBF16PS (16 cycles each) leaves room for.
struct AmxKernel {
  using Packed = Bf16Bits;
  static constexpr int64_t kRows = 32, kCols = 32, kDepthBlock = 512, kRowBlock = 4 * kRows, kDepthAlign = 32;
  static void pack_a(bool trans_a, const float* A, int64_t lda, int64_t rows, int64_t depth, Bf16Bits* out) {
    bf16::pack_pairs(A, lda, !trans_a, rows, depth, kRows, false, out);
  }
  static void pack_b(bool trans_b, const float* B, int64_t ldb, int64_t depth, int64_t cols, Bf16Bits* out) {
    bf16::pack_pairs(B, ldb, trans_b, cols, depth, kCols, true, out);
  }
  static void multiply(int64_t depth, const Bf16Bits* a, const Bf16Bits* b, float alpha, float beta, float* C,
                       int64_t ldc, int64_t rows, int64_t cols) {
    // The tile instructions are asm statements that do not declare the memory they read: the packing
    // stores before them must not be moved past them.
    std::atomic_signal_fence(std::memory_order_seq_cst);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    const int64_t chunks = (depth + 31) / 32;
    for (int64_t c = 0; c < chunks; ++c, a += kChunkElements, b += kChunkElements) {
      _tile_loadd(4, a, 64);
      _tile_loadd(6, b, 128);
      _tile_loadd(7, b + 32, 128);
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_loadd(5, a + 512, 64);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
    alignas(64) float sums[kRows * kCols];
    _tile_stored(0, sums, kCols * 4);
    _tile_stored(1, sums + 16, kCols * 4);
    _tile_stored(2, sums + 16 * kCols, kCols * 4);
    _tile_stored(3, sums + 16 * kCols + 16, kCols * 4);
    bf16::store_block(sums, kCols, alpha, beta, C, ldc, rows, cols);
  }
  // Each thread loads the configuration before its first tile instruction and releases the tiles
  // after its last (a released thread's context switches save no tile data).
  struct ThreadScope {
    ThreadScope() {
      static const TileConfig config;
      _tile_loadconfig(&config);
    }
    ~ThreadScope() { _tile_release(); }
  };
};

}  // namespace

void gemm_bf16_amx(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                   int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, bool threaded,
                   const GemmEpilogue& epilogue) {
  blocked_gemm<AmxKernel>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threaded, epilogue);
}

}  // namespace ops::cpu

#endif  // AVX512-BF16 and AMX
