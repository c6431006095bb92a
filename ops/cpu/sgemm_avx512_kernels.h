// The AVX-512 building blocks of our f32 GEMM (ops/cpu/sgemm_avx512.cpp) and of the f32 attention
// kernels (ops/cpu/attention_avx512.cpp): operand packing, register transposes and the 12 x 32
// micro-kernel. Internal to ops/cpu; include only where __AVX512F__ is defined. docs/gemm.md.
#pragma once

#ifdef __AVX512F__

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

#include "ops/cpu/avx512_intrinsics.h"

namespace ops::cpu::detail {

// Micro-tile: kRows rows x kCols columns of C live in 2·kRows zmm registers (24 of the 32), and
// each step of k costs two vector loads of B, kRows broadcasts of A and 2·kRows FMAs.
inline constexpr int64_t kRows = 12;
inline constexpr int64_t kCols = 32;
// Packing a transposed A prefetches this many rows of K ahead (dW = dYᵀ·X: 1.1-1.3x per product).
inline constexpr int64_t kPrefetchRows = 8;

struct AlignedFree {
  void operator()(float* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<float[], AlignedFree>;

inline AlignedBuffer aligned_floats(int64_t count) {
  const size_t bytes = (size_t(count) * sizeof(float) + 63) / 64 * 64;  // aligned_alloc: a multiple of 64
  AlignedBuffer buffer(static_cast<float*>(std::aligned_alloc(64, bytes)));
  if (!buffer) throw std::bad_alloc();
  return buffer;
}

// A buffer of floats 64-byte aligned (packed panels are read with aligned loads), allocated on first
// use and grown, never shrunk: touching fresh pages costs more than a small product (measured on the development machines, docs/gemm.md).
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

inline __mmask16 first_lanes(int64_t count) {
  return count >= 16 ? __mmask16(0xFFFF) : count <= 0 ? __mmask16(0) : __mmask16((1u << count) - 1);
}

// Copies `count` floats and zero-fills the rest of a row of `width` in a packed panel.
inline void copy_padded(const float* source, int64_t count, int64_t width, float* out) {
  for (int64_t i = 0; i < width; i += 16)
    _mm512_mask_storeu_ps(out + i, first_lanes(width - i), _mm512_maskz_loadu_ps(first_lanes(count - i), source + i));
}

// Transposes a 16 x 16 block held as 16 row vectors: afterwards r[j] holds what was column j. Three
// rounds of shuffles: 32-bit pairs, 64-bit pairs, then 128-bit lanes twice.
inline void transpose_16x16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);  // per 128-bit lane l: r_i[4l], r_i+1[4l], r_i[4l+1], r_i+1[4l+1]
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  // r[4g + c], lane l: column 4l + c of rows 4g .. 4g+3.
  for (int g = 0; g < 16; g += 4)
    for (int half = 0; half < 2; ++half) {
      const __m512d low = _mm512_castps_pd(t[g + half]), high = _mm512_castps_pd(t[g + 2 + half]);
      r[g + 2 * half] = _mm512_castpd_ps(_mm512_unpacklo_pd(low, high));
      r[g + 2 * half + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(low, high));
    }
  for (int c = 0; c < 4; ++c) {
    // Lanes (0, 2) and (1, 3) of the row groups 0|1 and 2|3, then gathered per column.
    const __m512 even01 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88), odd01 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xdd);
    const __m512 even23 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88),
                 odd23 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xdd);
    t[c] = _mm512_shuffle_f32x4(even01, even23, 0x88);
    t[8 + c] = _mm512_shuffle_f32x4(even01, even23, 0xdd);
    t[4 + c] = _mm512_shuffle_f32x4(odd01, odd23, 0x88);
    t[12 + c] = _mm512_shuffle_f32x4(odd01, odd23, 0xdd);
  }
  for (int j = 0; j < 16; ++j) r[j] = t[j];
}

// Reads `lines` (<= 16) rows of 16 floats, row i at source + i·stride, the first `count` of each
// (the rest and missing rows as zeros), and returns them transposed: r[j] = what was column j.
inline void load_transposed(const float* source, int64_t stride, int64_t lines, int64_t count, __m512 r[16]) {
  const __mmask16 mask = first_lanes(count);
  for (int64_t i = 0; i < 16; ++i)
    r[i] = i < lines ? _mm512_maskz_loadu_ps(mask, source + i * stride) : _mm512_setzero_ps();
  transpose_16x16(r);
}

// Packs rows [0, rows) and depth [0, depth) of op(A) as panels of kRows rows, each stored k-major
// (element (i, k) of a panel at k·kRows + i), zero rows past `rows`. A stored transposed (K, M) is
// read one row of K at a time, `rows` consecutive floats (rows of A far apart defeat the prefetcher
// when read a panel at a time); A itself 16 values of k at a time from each row of a panel,
// transposed in registers.
inline void pack_a(bool trans_a, const float* A, int64_t lda, int64_t rows, int64_t depth, float* packed) {
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
  const __mmask16 panel_row = first_lanes(kRows);
  for (int64_t panel = 0; panel < panels; ++panel, packed += kRows * depth) {
    const int64_t panel_rows = std::min(kRows, rows - panel * kRows);
    for (int64_t k = 0; k < depth; k += 16) {
      __m512 column[16];  // column[j]: the panel's rows at depth k + j
      load_transposed(A + panel * kRows * lda + k, lda, panel_rows, depth - k, column);
      for (int64_t j = 0; j < std::min<int64_t>(16, depth - k); ++j)
        _mm512_mask_storeu_ps(packed + (k + j) * kRows, panel_row, column[j]);
    }
  }
}

// Packs depth [0, depth) and columns [0, cols) of op(B) as panels of kCols columns, each stored
// k-major (element (k, j) of a panel at k·kCols + j), zero columns past `cols`. B itself is read one
// row of K at a time (`cols` consecutive floats); B stored transposed (N, K) 16 columns (rows of the
// stored matrix) by 16 values of k at a time, transposed in registers.
inline void pack_b(bool trans_b, const float* B, int64_t ldb, int64_t depth, int64_t cols, float* packed) {
  const int64_t panels = (cols + kCols - 1) / kCols;
  if (!trans_b) {
    for (int64_t k = 0; k < depth; ++k)
      for (int64_t panel = 0; panel < panels; ++panel)
        copy_padded(B + k * ldb + panel * kCols, std::min(kCols, cols - panel * kCols), kCols,
                    packed + panel * kCols * depth + k * kCols);
    return;
  }
  for (int64_t panel = 0; panel < panels; ++panel, packed += kCols * depth)  // element (k, col) at col·ldb + k
    for (int64_t half = 0; half < kCols; half += 16) {
      const int64_t first_col = panel * kCols + half;
      for (int64_t k = 0; k < depth; k += 16) {
        __m512 row[16];  // row[j]: 16 columns at depth k + j
        load_transposed(B + first_col * ldb + k, ldb, std::clamp<int64_t>(cols - first_col, 0, 16), depth - k, row);
        for (int64_t j = 0; j < std::min<int64_t>(16, depth - k); ++j)
          _mm512_store_ps(packed + (k + j) * kCols + half, row[j]);
      }
    }
}

// C[0:rows, 0:cols] = alpha · Σ_k a_k b_kᵀ + beta · C, the sum over k < depth of the outer products of
// a_k = a + k·a_stride (kRows values: a column of an A panel) and b_k = b + k·b_stride (the first `cols`
// of kCols values: a row of a B panel; the rest read as zeros); rows <= kRows, cols <= kCols. Packed
// panels have strides kRows and kCols; the attention kernels also pass rows of unpacked matrices.
// beta == 0 does not read C. Element (i, j) sums k in order, whatever the rows and cols.
inline void micro_kernel(int64_t depth, const float* a, int64_t a_stride, const float* b, int64_t b_stride,
                         float alpha, float beta, float* C, int64_t ldc, int64_t rows, int64_t cols) {
  // Masked loads cost what plain ones do, and keep a b_k that ends a matrix from reading past it.
  const __mmask16 low = first_lanes(cols), high = first_lanes(cols - 16);
  __m512 acc[kRows][2];
#pragma GCC unroll 12
  for (int64_t i = 0; i < kRows; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < depth; ++k, a += a_stride, b += b_stride) {
    const __m512 b_low = _mm512_maskz_loadu_ps(low, b), b_high = _mm512_maskz_loadu_ps(high, b + 16);
#pragma GCC unroll 12
    for (int64_t i = 0; i < kRows; ++i) {
      const __m512 a_i = _mm512_set1_ps(a[i]);
      acc[i][0] = _mm512_fmadd_ps(a_i, b_low, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(a_i, b_high, acc[i][1]);
    }
  }
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

// out[c·ld_out + r] = in[r·ld_in + c] for r < rows, c < cols, 16 x 16 blocks at a time.
inline void transpose_matrix(const float* in, int64_t ld_in, int64_t rows, int64_t cols, float* out, int64_t ld_out) {
  for (int64_t r = 0; r < rows; r += 16) {
    const __mmask16 out_lanes = first_lanes(rows - r);
    for (int64_t c = 0; c < cols; c += 16) {
      __m512 column[16];
      load_transposed(in + r * ld_in + c, ld_in, std::min<int64_t>(16, rows - r), cols - c, column);
      for (int64_t j = 0; j < std::min<int64_t>(16, cols - c); ++j)
        _mm512_mask_storeu_ps(out + (c + j) * ld_out + r, out_lanes, column[j]);
    }
  }
}

}  // namespace ops::cpu::detail

#endif  // __AVX512F__
