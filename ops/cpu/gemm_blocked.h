// The blocked GEMM driver shared by the CPU kernels (f32 in ops/cpu/sgemm_avx512.cpp, bf16 in
// ops/cpu/gemm_bf16_amx.cpp and ops/cpu/gemm_bf16_avx512.cpp): BLIS's layout, parameterised by a
// micro-kernel. op(B) is packed once per product, shared by the threads, as panels of kCols columns
// for each depth block (kDepthBlock) of K. C is cut into tiles (kRowBlock rows, up to kMaxColBlock
// columns) that the threads take in runs along a row of tiles; a thread packs a tile's rows of op(A),
// all of K, into panels of kRows rows unless its previous tile had the same rows, and the micro-kernel
// multiplies one A panel by each B panel of the tile in turn into kRows x kCols blocks of C, one depth
// block after the other. docs/gemm.md explains the sizes. Internal to ops/cpu; include only where
// __AVX512F__ is defined.
//
// A Kernel supplies:
//   Packed                       element type of the packed panels (float, or bf16 bits as uint16_t)
//   kRows, kCols                 the micro-tile
//   kDepthBlock, kRowBlock       depth of a block of K; rows of a tile of C (a multiple of kRows)
//   kDepthAlign                  a packed depth block is rounded up to this (zero-filled)
//   pack_a(trans_a, A, lda, rows, depth, out)   rows x depth of op(A) as panels of kRows rows,
//                                               panel p at p·kRows·padded(depth)
//   pack_b(trans_b, B, ldb, depth, cols, out)   depth x cols of op(B) as panels of kCols columns,
//                                               panel p at p·kCols·padded(depth)
//   multiply(depth, a_panel, b_panel, alpha, beta, C, ldc, rows, cols)
//                                C[0:rows, 0:cols] = alpha · a_panel · b_panel + beta · C (beta == 0:
//                                C not read), summing k in order
//   ThreadScope                  constructed on each thread before its first multiply, destroyed
//                                after its last (AMX's tile configuration)
#pragma once

#ifdef __AVX512F__

#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "ops/cpu/gemm.h"
#include "ops/cpu/sgemm_avx512_kernels.h"

namespace ops::cpu {

// Tiles of C are this wide at most, narrower (down to kMinColBlock) while there are fewer than
// kTilesPerThread tiles per thread to share: a tile's A block is packed once per tile.
inline constexpr int64_t kMaxColBlock = 512, kMinColBlock = 128, kTilesPerThread = 4;
// op(B) is packed by the threads in jobs of this many panels (of one depth block).
inline constexpr int64_t kPanelsPerPackJob = 8;

// `count` elements of T from a thread's growing float buffer (64-byte aligned, never shrunk).
template <typename T>
T* packing_elements(detail::PackingBuffer& buffer, int64_t count) {
  static_assert(sizeof(T) <= sizeof(float) && alignof(T) <= alignof(float));
  return reinterpret_cast<T*>(buffer.get((count * int64_t(sizeof(T)) + 3) / 4));
}

// C = alpha · op(A) · op(B) + beta · C on Kernel; M, N, K > 0. The contract of sgemm_avx512
// (ops/cpu/sgemm_avx512.h): each element sums over k in order, in depth blocks added onto C one after
// the other, so its value depends on its row of op(A), its column of op(B), alpha and beta only. The
// epilogue, when given, sees kRows-row blocks of a tile's columns right after their last depth block.
template <class Kernel>
void blocked_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, bool threaded,
                  const GemmEpilogue& epilogue) {
  using Packed = typename Kernel::Packed;
  constexpr int64_t kRows = Kernel::kRows, kCols = Kernel::kCols, kDepthBlock = Kernel::kDepthBlock;
  constexpr int64_t kRowBlock = Kernel::kRowBlock, kAlign = Kernel::kDepthAlign;
  static_assert(kDepthBlock % kAlign == 0 && kRowBlock % kRows == 0 && kMinColBlock % kCols == 0);
  auto padded = [](int64_t depth) { return (depth + kAlign - 1) / kAlign * kAlign; };
  const int64_t depth_blocks = (K + kDepthBlock - 1) / kDepthBlock;
  const int64_t panels = (N + kCols - 1) / kCols;
  auto depth_of = [&](int64_t block) { return std::min(kDepthBlock, K - block * kDepthBlock); };
  // Packed op(B): depth block d at d·kDepthBlock·panels·kCols, its panel p at p·kCols·padded(depth(d))
  // within it. The calling thread owns it; the team only reads it after packing.
  thread_local detail::PackingBuffer packed_b_buffer;
  Packed* const packed_b = packing_elements<Packed>(packed_b_buffer, padded(K) * panels * kCols);
  auto b_panel = [&](int64_t block, int64_t panel) {
    return packed_b + block * kDepthBlock * panels * kCols + panel * kCols * padded(depth_of(block));
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
    Kernel::pack_b(trans_b, B + (trans_b ? col * ldb + k : k * ldb + col), ldb, depth_of(block),
                   std::min(kPanelsPerPackJob * kCols, N - col), b_panel(block, panel));
  };
  // The calling thread's packed A (kRowBlock rows by all of K) and the row tile it holds (-1: none).
  struct PackedRows {
    Packed* panels;
    int64_t row_tile = -1;
  };
  auto thread_packed_a = [&] {
    thread_local detail::PackingBuffer buffer;
    return PackedRows{packing_elements<Packed>(buffer, kRowBlock * padded(K))};
  };
  auto run_tile = [&](int64_t tile, PackedRows& packed) {
    const int64_t row_tile = tile / col_tiles, row = row_tile * kRowBlock, rows = std::min(kRowBlock, M - row);
    const int64_t col = (tile % col_tiles) * col_block, cols = std::min(col_block, N - col);
    const int64_t panel_rows = (rows + kRows - 1) / kRows * kRows;  // rows padded to whole panels
    const bool repack = packed.row_tile != row_tile;
    packed.row_tile = row_tile;
    for (int64_t block = 0; block < depth_blocks; ++block) {
      const int64_t k = block * kDepthBlock, depth = depth_of(block);
      Packed* const packed_a = packed.panels + panel_rows * k;  // this depth block's panels
      if (repack)
        Kernel::pack_a(trans_a, A + (trans_a ? k * lda + row : row * lda + k), lda, rows, depth, packed_a);
      const float block_beta = block == 0 ? beta : 1.f;  // later depth blocks accumulate onto the first
      const bool last = block == depth_blocks - 1;
      // An A panel stays in L1 while the kernel sweeps the tile's B panels from L2.
      for (int64_t i = 0; i < rows; i += kRows) {
        for (int64_t j = 0; j < cols; j += kCols)
          Kernel::multiply(depth, packed_a + i * padded(depth), b_panel(block, (col + j) / kCols), alpha, block_beta,
                           C + (row + i) * ldc + col + j, ldc, std::min(kRows, rows - i), std::min(kCols, cols - j));
        if (last && epilogue) epilogue(row + i, col, std::min(kRows, rows - i), cols);  // (in L1)
      }
    }
  };

  const int64_t pack_jobs = depth_blocks * panel_groups, tiles = row_tiles * col_tiles;
  if (!threaded) {  // no parallel region at all: small products inside other ops' regions
    for (int64_t job = 0; job < pack_jobs; ++job) pack_b_job(job);
    [[maybe_unused]] typename Kernel::ThreadScope scope;
    PackedRows packed = thread_packed_a();
    for (int64_t tile = 0; tile < tiles; ++tile) run_tile(tile, packed);
    return;
  }
#pragma omp parallel
  {
#pragma omp for schedule(static)
    for (int64_t job = 0; job < pack_jobs; ++job) pack_b_job(job);
    // (the loop's barrier: every panel is packed before any tile reads it)
    [[maybe_unused]] typename Kernel::ThreadScope scope;
    PackedRows packed = thread_packed_a();
    // Guided: runs of consecutive tiles, long first, single tiles at the end to even out the threads;
    // within a run a row of tiles reuses its packed A.
#pragma omp for schedule(guided)
    for (int64_t tile = 0; tile < tiles; ++tile) run_tile(tile, packed);
  }
}

}  // namespace ops::cpu

#endif  // __AVX512F__
