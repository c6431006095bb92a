// The building blocks of the bf16 GEMM kernels (ops/cpu/gemm_bf16_amx.cpp, gemm_bf16_avx512.cpp):
// rounding f32 operands to bf16 while packing them, in the pair layouts that VDPBF16PS and
// TDPBF16PS read, and writing an f32 block of C. Internal to ops/cpu; include only in files built
// with -mavx512bf16 (ops/CMakeLists.txt). docs/gemm.md.
//
// Both instructions multiply pairs: depths k = 2p and 2p + 1 of one row (or column) sit side by side
// in a 32-bit lane, k = 2p in the low half. A "pair block" is 16 lines (rows of op(A) or columns of
// op(B)) by 16 pairs (32 depths), as 16 vectors of 16 such lanes.
#pragma once

#if defined(__AVX512BF16__)

#include <algorithm>
#include <cstdint>

#include "ops/cpu/sgemm_avx512_kernels.h"

namespace ops::cpu::detail {

// bf16 values as stored: the upper 16 bits of the f32 they round to.
using Bf16Bits = uint16_t;

// Lane j: (even[j], odd[j]) rounded to bf16 (nearest even, as PyTorch rounds), even in the low
// half. cvtne2ps puts its second operand's 16 values first; one word permutation interleaves them.
inline __m512i bf16_pairs(__m512 even, __m512 odd) {
  const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22,
                                              6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(interleave, __m512i(_mm512_cvtne2ps_pbh(odd, even)));
}

// Transposes a 16 x 16 block of 32-bit lanes (ops/cpu/sgemm_avx512_kernels.h's float transpose).
inline void transpose_pairs(__m512i block[16]) {
  __m512 r[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_castsi512_ps(block[i]);
  detail::transpose_16x16(r);
  for (int i = 0; i < 16; ++i) block[i] = _mm512_castps_si512(r[i]);
}

// Reads a pair block of an operand, rounded to bf16: `lines` (<= 16) lines by `depth` depths (the
// first 32 are read), lines and depths past those as zeros. The operand is stored depth-contiguous
// (element (line, k) at line·ld + k) or line-contiguous (at k·ld + line). Returns it line-major
// (block[line], lane p: pair p of that line) or pair-major (block[p], lane line).
inline void load_pair_block(const float* source, int64_t ld, bool depth_contiguous, int64_t lines, int64_t depth,
                            bool pair_major, __m512i block[16]) {
  if (depth_contiguous) {
    const __mmask16 low = first_lanes(depth), high = first_lanes(depth - 16);
    for (int64_t line = 0; line < 16; ++line) {
      const float* row = source + line * ld;
      // cvtne2ps: the second operand's 16 values first; consecutive bf16 pairs are then (2p, 2p + 1).
      block[line] = line < lines ? __m512i(_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(high, row + 16),
                                                               _mm512_maskz_loadu_ps(low, row)))
                                 : _mm512_setzero_si512();
    }
    if (pair_major) transpose_pairs(block);
    return;
  }
  const __mmask16 mask = first_lanes(lines);
  auto depth_row = [&](int64_t k) {
    return k < depth ? _mm512_maskz_loadu_ps(mask, source + k * ld) : _mm512_setzero_ps();
  };
  for (int64_t p = 0; p < 16; ++p) block[p] = bf16_pairs(depth_row(2 * p), depth_row(2 * p + 1));
  if (!pair_major) transpose_pairs(block);
}

// Packs lines [0, lines) and depths [0, depth) of an operand (stored as load_pair_block says) as
// panels of `width` lines, each padded(depth) = depth rounded up to 32, zeros past `lines` and
// `depth`; panel q at q·width·padded(depth) in `packed`. Within a panel, depths 32c .. 32c + 31
// (chunk c) at 32c·width:
//   pair-major (VDPBF16PS operands, TDPBF16PS's B tiles): pair p of line i at lane (16c + p)·width + i
//   line-major (TDPBF16PS's A tiles, width 32): line i's 16 pairs at lanes (16c·width) + 16i ..
inline void pack_pairs(const float* source, int64_t ld, bool depth_contiguous, int64_t lines, int64_t depth,
                       int64_t width, bool pair_major, Bf16Bits* packed) {
  const int64_t padded = (depth + 31) / 32 * 32, panels = (lines + width - 1) / width;
  // Chunk by chunk across all panels: a line-contiguous source is then read in runs of all its
  // lines (up to 1-2 KiB) per row of depth, not 64 bytes per row and block, which left the hardware
  // prefetcher nothing to follow (rows lie ld apart); the next chunk's rows are fetched ahead too.
  for (int64_t k = 0; k < padded; k += 32) {
    if (!depth_contiguous)
      for (int64_t ahead = k + 32; ahead < std::min(k + 64, depth); ++ahead)
        for (int64_t line = 0; line < lines; line += 16) _mm_prefetch(source + ahead * ld + line, _MM_HINT_T0);
    for (int64_t panel = 0; panel < panels; ++panel) {
      uint32_t* const chunk = reinterpret_cast<uint32_t*>(packed + panel * width * padded) + k / 2 * width;
      for (int64_t group = 0; group < width; group += 16) {
        const int64_t first = panel * width + group, in_group = std::min<int64_t>(16, width - group);
        const float* block_source = source + (depth_contiguous ? first * ld + k : k * ld + first);
        __m512i block[16];
        load_pair_block(block_source, ld, depth_contiguous, std::clamp<int64_t>(lines - first, 0, in_group), depth - k,
                        pair_major, block);
        if (pair_major)
          for (int64_t p = 0; p < 16; ++p)
            _mm512_mask_storeu_epi32(chunk + p * width + group, first_lanes(in_group), block[p]);
        else
          for (int64_t line = 0; line < in_group; ++line) _mm512_storeu_si512(chunk + (group + line) * 16, block[line]);
      }
    }
  }
}

// C[0:rows, 0:cols] = alpha · sums + beta · C (beta == 0: C not read); sums: row i at i·sums_ld, at
// least `cols` (<= 32) floats.
inline void store_block(const float* sums, int64_t sums_ld, float alpha, float beta, float* C, int64_t ldc,
                        int64_t rows, int64_t cols) {
  const __mmask16 low = first_lanes(cols), high = first_lanes(cols - 16);
  const __m512 alpha_v = _mm512_set1_ps(alpha), beta_v = _mm512_set1_ps(beta);
  for (int64_t i = 0; i < rows; ++i, sums += sums_ld, C += ldc) {
    __m512 out_low = _mm512_mul_ps(alpha_v, _mm512_maskz_loadu_ps(low, sums)),
           out_high = _mm512_mul_ps(alpha_v, _mm512_maskz_loadu_ps(high, sums + 16));
    if (beta != 0.f) {
      out_low = _mm512_fmadd_ps(beta_v, _mm512_maskz_loadu_ps(low, C), out_low);
      out_high = _mm512_fmadd_ps(beta_v, _mm512_maskz_loadu_ps(high, C + 16), out_high);
    }
    _mm512_mask_storeu_ps(C, low, out_low);
    _mm512_mask_storeu_ps(C + 16, high, out_high);
  }
}

}  // namespace ops::cpu::detail

#endif  // __AVX512BF16__
