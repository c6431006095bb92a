// AVX-512 SGEMM in the BLIS layout. op(B) is packed once per product, shared by the threads, as
// panels of kCols columns for each depth block (kDepthBlock) of K. C is cut into tiles (kRowBlock
// rows, up to kMaxColBlock columns) that the threads take one at a time; a tile packs its rows of
// op(A) per depth block into panels of kRows rows, and a register-resident micro-kernel multiplies
// one A panel by each B panel of the tile in turn into kRows x kCols blocks of C. docs/gemm.md
// explains the sizes.
#include "ops/cpu/sgemm_avx512.h"

#ifdef __AVX512F__

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <new>

namespace ops::cpu {

namespace {

// Micro-tile: kRows rows x kCols columns of C live in 2·kRows zmm registers (24 of the 32), and
// each step of k costs two vector loads of B, kRows broadcasts of A and 2·kRows FMAs.
constexpr int64_t kRows = 12;
constexpr int64_t kCols = 32;
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
// Packing a transposed A prefetches this many rows of K ahead (dW = dYᵀ·X: 1.1-1.3x per product).
constexpr int64_t kPrefetchRows = 8;

struct AlignedFree {
  void operator()(float* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<float[], AlignedFree>;

AlignedBuffer aligned_floats(int64_t count) {
  AlignedBuffer buffer(static_cast<float*>(std::aligned_alloc(64, size_t(count) * sizeof(float))));
  if (!buffer) throw std::bad_alloc();
  return buffer;
}

// A thread's buffer, allocated on first use and grown, never shrunk: touching fresh pages costs more
// than a small product (FACTS.md).
class PackingBuffer {
 public:
  float* get(int64_t count) {
    if (count > capacity_) {
      buffer_ = aligned_floats(count);
      capacity_ = count;
    }
    return buffer_.get();
  }

 private:
  AlignedBuffer buffer_;
  int64_t capacity_ = 0;
};

// The calling thread's buffer for a tile's packed A block.
float* thread_packed_a() {
  thread_local PackingBuffer buffer;
  return buffer.get(kRowBlock * kDepthBlock);
}

// Copies `count` floats and zero-fills the rest of a row of `width` in a packed panel.
void copy_padded(const float* source, int64_t count, int64_t width, float* out) {
  for (int64_t i = 0; i < count; ++i) out[i] = source[i];
  for (int64_t i = count; i < width; ++i) out[i] = 0.f;
}

// Packs rows [0, rows) and depth [0, depth) of op(A) as panels of kRows rows, each stored k-major
// (element (i, k) of a panel at k·kRows + i), zero rows past `rows`. A stored transposed (K, M) is
// read one row of K at a time, `rows` consecutive floats (rows of A far apart defeat the prefetcher
// when read a panel at a time); A itself as kRows sequential row streams per panel.
void pack_a(bool trans_a, const float* A, int64_t lda, int64_t rows, int64_t depth, float* packed) {
  const int64_t panels = (rows + kRows - 1) / kRows;
  if (trans_a) {  // element (row, k) at k·lda + row
    for (int64_t k = 0; k < depth; ++k) {
      // Rows of K lie a whole row of A apart, beyond the hardware prefetcher's stride: fetch ahead.
      if (k + kPrefetchRows < depth)
        for (int64_t i = 0; i < rows; i += 16) _mm_prefetch(A + (k + kPrefetchRows) * lda + i, _MM_HINT_T0);
      for (int64_t panel = 0; panel < panels; ++panel)
        copy_padded(A + k * lda + panel * kRows, std::min(kRows, rows - panel * kRows), kRows,
                    packed + panel * kRows * depth + k * kRows);
    }
    return;
  }
  for (int64_t panel = 0; panel < panels; ++panel, packed += kRows * depth) {
    const int64_t panel_rows = std::min(kRows, rows - panel * kRows);
    const float* row[kRows];
    for (int64_t i = 0; i < panel_rows; ++i) row[i] = A + (panel * kRows + i) * lda;
    for (int64_t k = 0; k < depth; ++k) {
      float* out = packed + k * kRows;
      for (int64_t i = 0; i < panel_rows; ++i) out[i] = row[i][k];
      for (int64_t i = panel_rows; i < kRows; ++i) out[i] = 0.f;
    }
  }
}

// Packs depth [0, depth) and columns [0, cols) of op(B) as panels of kCols columns, each stored
// k-major (element (k, j) of a panel at k·kCols + j), zero columns past `cols`. B itself is read one
// row of K at a time (`cols` consecutive floats); B stored transposed (N, K) one column (a row of
// the stored matrix) at a time.
void pack_b(bool trans_b, const float* B, int64_t ldb, int64_t depth, int64_t cols, float* packed) {
  const int64_t panels = (cols + kCols - 1) / kCols;
  if (!trans_b) {
    for (int64_t k = 0; k < depth; ++k)
      for (int64_t panel = 0; panel < panels; ++panel)
        copy_padded(B + k * ldb + panel * kCols, std::min(kCols, cols - panel * kCols), kCols,
                    packed + panel * kCols * depth + k * kCols);
    return;
  }
  for (int64_t panel = 0; panel < panels; ++panel, packed += kCols * depth) {  // element (k, col) at col·ldb + k
    const int64_t panel_cols = std::min(kCols, cols - panel * kCols);
    for (int64_t j = 0; j < kCols; ++j) {
      if (j >= panel_cols) {
        for (int64_t k = 0; k < depth; ++k) packed[k * kCols + j] = 0.f;
        continue;
      }
      const float* column = B + (panel * kCols + j) * ldb;
      for (int64_t k = 0; k < depth; ++k) packed[k * kCols + j] = column[k];
    }
  }
}

__mmask16 first_lanes(int64_t count) {
  return count >= 16 ? __mmask16(0xFFFF) : count <= 0 ? __mmask16(0) : __mmask16((1u << count) - 1);
}

// C[0:rows, 0:cols] = alpha · a · b + beta · C for one packed A panel (depth x kRows) and one packed
// B panel (depth x kCols); rows <= kRows, cols <= kCols. beta == 0 does not read C.
void micro_kernel(int64_t depth, const float* a, const float* b, float alpha, float beta, float* C, int64_t ldc,
                  int64_t rows, int64_t cols) {
  __m512 acc[kRows][2];
#pragma GCC unroll 12
  for (int64_t i = 0; i < kRows; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < depth; ++k, a += kRows, b += kCols) {
    const __m512 b_low = _mm512_load_ps(b), b_high = _mm512_load_ps(b + 16);
#pragma GCC unroll 12
    for (int64_t i = 0; i < kRows; ++i) {
      const __m512 a_i = _mm512_set1_ps(a[i]);
      acc[i][0] = _mm512_fmadd_ps(a_i, b_low, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(a_i, b_high, acc[i][1]);
    }
  }
  const __mmask16 low = first_lanes(cols), high = first_lanes(cols - 16);
  const __m512 alpha_v = _mm512_set1_ps(alpha), beta_v = _mm512_set1_ps(beta);
#pragma GCC unroll 12
  for (int64_t i = 0; i < kRows; ++i) {
    if (i >= rows) break;
    float* row = C + i * ldc;
    __m512 out_low = _mm512_mul_ps(alpha_v, acc[i][0]), out_high = _mm512_mul_ps(alpha_v, acc[i][1]);
    if (beta != 0.f) {
      out_low = _mm512_fmadd_ps(beta_v, _mm512_maskz_loadu_ps(low, row), out_low);
      out_high = _mm512_fmadd_ps(beta_v, _mm512_maskz_loadu_ps(high, row + 16), out_high);
    }
    _mm512_mask_storeu_ps(row, low, out_low);
    _mm512_mask_storeu_ps(row + 16, high, out_high);
  }
}

}  // namespace

void sgemm_avx512(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, bool threaded) {
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
  auto run_tile = [&](int64_t tile, float* packed_a) {
    const int64_t row = (tile / col_tiles) * kRowBlock, rows = std::min(kRowBlock, M - row);
    const int64_t col = (tile % col_tiles) * col_block, cols = std::min(col_block, N - col);
    for (int64_t block = 0; block < depth_blocks; ++block) {
      const int64_t k = block * kDepthBlock, depth = depth_of(block);
      pack_a(trans_a, A + (trans_a ? k * lda + row : row * lda + k), lda, rows, depth, packed_a);
      const float block_beta = block == 0 ? beta : 1.f;  // later depth blocks accumulate onto the first
      // An A panel (12 KiB) stays in L1 while the kernel sweeps the tile's B panels from L2.
      for (int64_t i = 0; i < rows; i += kRows)
        for (int64_t j = 0; j < cols; j += kCols)
          micro_kernel(depth, packed_a + i * depth, b_panel(block, (col + j) / kCols), alpha, block_beta,
                       C + (row + i) * ldc + col + j, ldc, std::min(kRows, rows - i), std::min(kCols, cols - j));
    }
  };

  const int64_t pack_jobs = depth_blocks * panel_groups, tiles = row_tiles * col_tiles;
  if (!threaded) {  // no parallel region at all: small products inside other ops' regions (attention tiles)
    for (int64_t job = 0; job < pack_jobs; ++job) pack_b_job(job);
    float* const packed_a = thread_packed_a();
    for (int64_t tile = 0; tile < tiles; ++tile) run_tile(tile, packed_a);
    return;
  }
#pragma omp parallel
  {
#pragma omp for schedule(static)
    for (int64_t job = 0; job < pack_jobs; ++job) pack_b_job(job);
    // (the loop's barrier: every panel is packed before any tile reads it)
    float* const packed_a = thread_packed_a();
#pragma omp for schedule(dynamic)
    for (int64_t tile = 0; tile < tiles; ++tile) run_tile(tile, packed_a);
  }
}

}  // namespace ops::cpu

#endif  // __AVX512F__
