// bf16 GEMM on AMX (ops/cpu/gemm_bf16.h): the blocked driver (ops/cpu/gemm_blocked.h) on a 32 x 32
// micro-kernel of TDPBF16PS. The block of C lives in four tile registers (16 x 16 f32 each); each
// step of 32 depths loads two A tiles (16 rows x 32 depths of bf16) and two B tiles (16 pairs x 16
// columns) and issues four tile products, 32 768 multiply-adds. Built with -mamx-tile -mamx-bf16
// -mavx512bf16 (ops/CMakeLists.txt); called only once Linux has granted the tile-data permission
// (ops/cpu/bf16_kernel.cpp).
#include "ops/cpu/gemm_bf16.h"

// GCC names the AMX macros __AMX_TILE__ and __AMX_BF16__, clang (the fuzz build) __AMXTILE__ and
// __AMXBF16__.
#if defined(__AVX512BF16__) && (defined(__AMX_TILE__) || defined(__AMXTILE__)) && \
    (defined(__AMX_BF16__) || defined(__AMXBF16__))

#include <atomic>

#include "ops/cpu/gemm_bf16_kernels.h"
#include "ops/cpu/gemm_blocked.h"

namespace ops::cpu {

namespace {

using detail::Bf16Bits;

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
    detail::pack_pairs(A, lda, !trans_a, rows, depth, kRows, false, out);
  }
  static void pack_b(bool trans_b, const float* B, int64_t ldb, int64_t depth, int64_t cols, Bf16Bits* out) {
    detail::pack_pairs(B, ldb, trans_b, cols, depth, kCols, true, out);
  }
  // C[0:rows, 0:cols] = alpha · a · b + beta · C. With alpha = 1 and beta = 0 or 1 (every product
  // of the engine, and each depth block after the first) the tiles start from C (or zero) and are
  // stored straight back: no pass over the block in vector registers. A block at the edge of C goes
  // through a 32 x 32 copy so that it is summed in the same order as a whole one (an element's bits
  // do not depend on where the block boundaries fall).
  static void multiply(int64_t depth, const Bf16Bits* a, const Bf16Bits* b, float alpha, float beta, float* C,
                       int64_t ldc, int64_t rows, int64_t cols) {
    // The tile instructions are asm statements that do not declare the memory they read: the packing
    // stores before them must not be moved past them.
    std::atomic_signal_fence(std::memory_order_seq_cst);
    alignas(64) float block[kRows * kCols];
    if (alpha != 1.f || (beta != 0.f && beta != 1.f)) {
      zero_tiles();
      products(depth, a, b);
      store_tiles(block, kCols);
      detail::store_block(block, kCols, alpha, beta, C, ldc, rows, cols);
      return;
    }
    const bool whole = rows == kRows && cols == kCols;
    float* const target = whole ? C : block;
    const int64_t target_ld = whole ? ldc : kCols;
    if (beta == 0.f) {
      zero_tiles();
    } else {
      if (!whole) detail::store_block(C, ldc, 1.f, 0.f, block, kCols, rows, cols);
      load_tiles(target, target_ld);
    }
    products(depth, a, b);
    store_tiles(target, target_ld);
    if (!whole) detail::store_block(block, kCols, 1.f, 0.f, C, ldc, rows, cols);
  }

 private:
  static void zero_tiles() {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  }
  // Tiles 0-3 <-> the 32 x 32 f32 block at `block` (rows `ld` floats apart).
  static void load_tiles(const float* block, int64_t ld) {
    _tile_loadd(0, block, ld * 4);
    _tile_loadd(1, block + 16, ld * 4);
    _tile_loadd(2, block + 16 * ld, ld * 4);
    _tile_loadd(3, block + 16 * ld + 16, ld * 4);
  }
  static void store_tiles(float* block, int64_t ld) {
    _tile_stored(0, block, ld * 4);
    _tile_stored(1, block + 16, ld * 4);
    _tile_stored(2, block + 16 * ld, ld * 4);
    _tile_stored(3, block + 16 * ld + 16, ld * 4);
  }
  // Tiles 0-3 += the A panel times the B panel, 32 depths at a time.
  static void products(int64_t depth, const Bf16Bits* a, const Bf16Bits* b) {
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
  }

 public:
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
