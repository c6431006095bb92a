// AVX-512 SGEMM in the BLIS layout. op(B) is packed once per product, shared by the threads, as
// panels of kCols columns for each depth block (kDepthBlock) of K. C is cut into tiles (kRowBlock
// rows, up to kMaxColBlock columns) that the threads take in runs along a row of tiles; a thread packs
// a tile's rows of op(A), all of K, into panels of kRows rows unless its previous tile had the same
// rows, and a register-resident micro-kernel multiplies one A panel by each B panel of the tile in
// turn into kRows x kCols blocks of C, one depth block after the other. docs/gemm.md explains the
// sizes.
#include "ops/cpu/sgemm_avx512.h"

#ifdef __AVX512F__

#include <omp.h>

#include <algorithm>

#include "ops/cpu/sgemm_avx512_kernels.h"

namespace ops::cpu {

namespace {

using namespace avx512;

// An A panel (kRows x kDepthBlock, 12 KiB) stays in L1 while the kernel sweeps the tile's B panels
// (kDepthBlock x kCols, 32 KiB each, up to 512 KiB) from L2; the tile's packed A block (kRowBlock x
// kDepthBlock, 96 KiB) sits in L2 too. The other order (a B panel held in L1 against streaming A
// panels) measured 5-30 % slower: 32 + 12 KiB crowd the 48 KiB L1.
constexpr int64_t kDepthBlock = 256;
constexpr int64_t kRowBlock = 8 * kRows;
// Tiles are this wide at most, narrower (down to kMinColBlock) while there are fewer than
// kTilesPerThread tiles per thread to share: a tile's A block is packed once per tile.
constexpr int64_t kMaxColBlock = 16 * kCols, kMinColBlock = 4 * kCols, kTilesPerThread = 4;
// op(B) is packed by the threads in jobs of this many panels (of one depth block).
constexpr int64_t kPanelsPerPackJob = 8;

// The calling thread's buffer for a row tile's packed A: kRowBlock rows by all of K.
float* thread_packed_a(int64_t depth) {
  thread_local PackingBuffer buffer;
  return buffer.get(kRowBlock * depth);
}

// Which row tile of this product the calling thread's packed A holds (-1: none yet).
struct PackedRows {
  float* panels;
  int64_t row_tile = -1;
};

}  // namespace

void sgemm_avx512(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, bool threaded,
                  const GemmEpilogue& epilogue) {
  const int64_t depth_blocks = (K + kDepthBlock - 1) / kDepthBlock;
  const int64_t panels = (N + kCols - 1) / kCols;
  // Packed op(B): depth block d (depth(d) rows of K) at d·kDepthBlock·panels·kCols, its panel p at
  // p·kCols·depth(d) within it. The calling thread owns it; the team only reads it after packing.
  thread_local PackingBuffer packed_b_buffer;
  float* const packed_b = packed_b_buffer.get(K * panels * kCols);
  auto depth_of = [&](int64_t block) { return std::min(kDepthBlock, K - block * kDepthBlock); };
  auto b_panel = [&](int64_t block, int64_t panel) {
    return packed_b + block * kDepthBlock * panels * kCols + panel * kCols * depth_of(block);
  };

  const int threads = threaded ? omp_get_max_threads() : 1;
  const int64_t row_tiles = (M + kRowBlock - 1) / kRowBlock;
  int64_t col_block = kMaxColBlock;
  while (col_block > kMinColBlock && row_tiles * ((N + col_block - 1) / col_block) < kTilesPerThread * threads)
    col_block /= 2;
  const int64_t col_tiles = (N + col_block - 1) / col_block;
  const int64_t panel_groups = (panels + kPanelsPerPackJob - 1) / kPanelsPerPackJob;

  auto pack_b_job = [&](int64_t job) {
    const int64_t block = job / panel_groups, panel = (job % panel_groups) * kPanelsPerPackJob;
    const int64_t k = block * kDepthBlock, col = panel * kCols;
    pack_b(trans_b, B + (trans_b ? col * ldb + k : k * ldb + col), ldb, depth_of(block),
           std::min(kPanelsPerPackJob * kCols, N - col), b_panel(block, panel));
  };
  auto run_tile = [&](int64_t tile, PackedRows& packed) {
    const int64_t row_tile = tile / col_tiles, row = row_tile * kRowBlock, rows = std::min(kRowBlock, M - row);
    const int64_t col = (tile % col_tiles) * col_block, cols = std::min(col_block, N - col);
    const int64_t panel_rows = (rows + kRows - 1) / kRows * kRows;  // rows padded to whole panels
    const bool repack = packed.row_tile != row_tile;
    packed.row_tile = row_tile;
    for (int64_t block = 0; block < depth_blocks; ++block) {
      const int64_t k = block * kDepthBlock, depth = depth_of(block);
      float* const packed_a = packed.panels + panel_rows * k;  // this depth block's panels
      if (repack) pack_a(trans_a, A + (trans_a ? k * lda + row : row * lda + k), lda, rows, depth, packed_a);
      const float block_beta = block == 0 ? beta : 1.f;  // later depth blocks accumulate onto the first
      const bool last = block == depth_blocks - 1;
      // An A panel (12 KiB) stays in L1 while the kernel sweeps the tile's B panels from L2.
      for (int64_t i = 0; i < rows; i += kRows) {
        for (int64_t j = 0; j < cols; j += kCols)
          micro_kernel(depth, packed_a + i * depth, kRows, b_panel(block, (col + j) / kCols), kCols, alpha, block_beta,
                       C + (row + i) * ldc + col + j, ldc, std::min(kRows, rows - i), std::min(kCols, cols - j));
        if (last && epilogue) epilogue(row + i, col, std::min(kRows, rows - i), cols);  // (<= 24 KiB, in L1)
      }
    }
  };

  const int64_t pack_jobs = depth_blocks * panel_groups, tiles = row_tiles * col_tiles;
  if (!threaded) {  // no parallel region at all: small products inside other ops' regions (attention tiles)
    for (int64_t job = 0; job < pack_jobs; ++job) pack_b_job(job);
    PackedRows packed{thread_packed_a(K)};
    for (int64_t tile = 0; tile < tiles; ++tile) run_tile(tile, packed);
    return;
  }
#pragma omp parallel
  {
#pragma omp for schedule(static)
    for (int64_t job = 0; job < pack_jobs; ++job) pack_b_job(job);
    // (the loop's barrier: every panel is packed before any tile reads it)
    PackedRows packed{thread_packed_a(K)};
    // Guided: runs of consecutive tiles, long first, single tiles at the end to even out the threads;
    // within a run a row of tiles reuses its packed A.
#pragma omp for schedule(guided)
    for (int64_t tile = 0; tile < tiles; ++tile) run_tile(tile, packed);
  }
}

}  // namespace ops::cpu

#endif  // __AVX512F__
