// What the CPU attention kernels (ops/cpu/attention.cpp: any dtype, Eigen tile products;
// ops/cpu/attention_avx512.cpp: f32 on the AVX-512 GEMM micro-kernel; ops/cpu/attention_bf16.cpp: f32
// with bf16 tile products; ops/cpu/attention_few_keys.cpp: at most 16 keys, a query at a time) do to a
// tile of dot products q_i·k_j to turn it into scores, probabilities and score gradients: masks,
// ALiBi, dropout masks, the online softmax of the forward and the softmax backward, of one row and of
// a whole tile. Internal to ops/cpu.
//
//   B = batch, H = heads, Tq / Tk = query / key lengths; query i sits at position i + (Tk − Tq)
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "ops/cpu/attention.h"
#include "ops/cpu/philox_blocks.h"
#include "ops/cpu/vec_math.h"

namespace ops::cpu::detail {

// Row t of head `batch_head` (b·H + h) of an operand laid out as `rows`.
template <typename T>
T* row_at(T* base, const RowLayout& rows, int64_t heads, int64_t batch_head, int64_t t) {
  return base + (batch_head / heads) * rows.batch + (batch_head % heads) * rows.head + t * rows.row;
}

// The keys [0, end) that at least one query of the tile starting at `query_start` (rows queries)
// may see: all keys, or up to the last query's position when causal.
inline int64_t visible_key_end(int64_t query_start, int64_t rows, const AttentionSizes& sizes,
                               const AttentionBias& bias) {
  if (!bias.causal) return sizes.key_len;
  const int64_t last_position = query_start + rows - 1 + sizes.key_len - sizes.query_len;
  return std::clamp<int64_t>(last_position + 1, 0, sizes.key_len);
}

// The first query that may see key `key_start` (queries before it are causally masked from it).
inline int64_t first_query_seeing(int64_t key_start, const AttentionSizes& sizes, const AttentionBias& bias) {
  if (!bias.causal) return 0;
  return std::clamp<int64_t>(key_start - (sizes.key_len - sizes.query_len), 0, sizes.query_len);
}

// How many of a tile row's `cols` keys from `key_start` on the causal mask leaves to query `query`
// (all of them without it); scale_bias_and_mask sets the rest to −inf, and the row steps below
// write their zeros without exponentiating them.
inline int64_t causally_visible(int64_t query, int64_t key_start, int64_t cols, const AttentionSizes& sizes,
                                const AttentionBias& bias) {
  if (!bias.causal) return cols;
  const int64_t position = query + sizes.key_len - sizes.query_len;
  return std::clamp<int64_t>(position - key_start + 1, 0, cols);
}

// Row `query` of the score bias that head `batch_head` (b·H + h) reads: block b mod P, plane h or 0.
template <typename T>
const T* score_bias_row(const AttentionBias& bias, const AttentionSizes& sizes, int64_t batch_head, int64_t query) {
  const int64_t block = (batch_head / sizes.heads) % bias.score_bias_blocks;
  const int64_t plane = block * (bias.score_bias_per_head ? sizes.heads : 1) +
                        (bias.score_bias_per_head ? batch_head % sizes.heads : 0);
  return static_cast<const T*>(bias.score_bias) + (plane * sizes.query_len + query) * sizes.key_len;
}

// Row `query` of the (P, H, Tq, Tk) bias gradient that head `batch_head` adds to; null for none.
template <typename T>
T* score_bias_grad_row(const AttentionBias& bias, const AttentionSizes& sizes, int64_t batch_head, int64_t query) {
  if (!bias.score_bias_grad) return nullptr;
  const int64_t block = (batch_head / sizes.heads) % bias.score_bias_blocks;
  const int64_t plane = block * sizes.heads + batch_head % sizes.heads;
  return static_cast<T*>(bias.score_bias_grad) + (plane * sizes.query_len + query) * sizes.key_len;
}

// Turns raw dot products q_i·k_j of one tile (rows × cols, rows `ld` apart) into scores: scale,
// ALiBi bias, score bias, and −inf where the causal mask or the key mask hides the key.
template <typename T>
void scale_bias_and_mask(T* scores, int64_t ld, int64_t rows, int64_t cols, int64_t batch_head, int64_t query_start,
                         int64_t key_start, const AttentionSizes& sizes, const AttentionBias& bias) {
  const T scale = T(bias.scale);
  const T minus_infinity = -std::numeric_limits<T>::infinity();
  const int64_t batch = batch_head / sizes.heads, head = batch_head % sizes.heads;
  const int32_t* keep = bias.key_keep ? bias.key_keep + batch * sizes.key_len + key_start : nullptr;
  const double slope = bias.alibi_slopes ? bias.alibi_slopes[head] : 0.0;
  for (int64_t r = 0; r < rows; ++r) {
    T* row = scores + r * ld;
    const int64_t position = query_start + r + sizes.key_len - sizes.query_len;
    const int64_t visible_end = causally_visible(query_start + r, key_start, cols, sizes, bias);
    const T* added =
        bias.score_bias ? score_bias_row<T>(bias, sizes, batch_head, query_start + r) + key_start : nullptr;
    if (bias.alibi_slopes) {
      for (int64_t c = 0; c < visible_end; ++c)
        row[c] = row[c] * scale + T(slope * double(key_start + c - position)) + (added ? added[c] : T(0));
    } else if (added) {
#pragma omp simd
      for (int64_t c = 0; c < visible_end; ++c) row[c] = row[c] * scale + added[c];
    } else {
      for (int64_t c = 0; c < visible_end; ++c) row[c] *= scale;
    }
    for (int64_t c = visible_end; c < cols; ++c) row[c] = minus_infinity;
    if (keep)
      for (int64_t c = 0; c < visible_end; ++c)
        if (keep[c] == 0) row[c] = minus_infinity;
  }
}

// The flat mask index of probability (batch·head, query, key): ((b·H + h)·Tq + i)·Tk + j.
inline uint64_t dropout_element(int64_t batch_head, int64_t query, int64_t key, const AttentionSizes& sizes) {
  return uint64_t((batch_head * sizes.query_len + query) * sizes.key_len + key);
}

// drop_scale[c] = M / (1 − p) for the `cols` probabilities of query `query` from key `key_start` on:
// attention_dropout_keeps, drawing the Philox blocks kPhiloxBlocks at a time, each once for its 4
// elements.
template <typename T>
void dropout_scales(T* drop_scale, int64_t cols, int64_t batch_head, int64_t query, int64_t key_start,
                    const AttentionSizes& sizes, const AttentionDropout& dropout) {
  const uint64_t first_element = dropout_element(batch_head, query, key_start, sizes);
  const double keep_probability = 1.0 - dropout.p;
  const T kept = T(attention_dropout_scale(dropout));
  uint32_t bits[4 * kPhiloxBlocks];
  for (int64_t c = 0; c < cols;) {
    const uint64_t element = first_element + uint64_t(c);
    const int64_t skip = int64_t(element % 4);  // lanes of the first block before `element`
    const int64_t count = std::min(cols - c, 4 * kPhiloxBlocks - skip);
    philox_blocks(dropout.offset + element / 4, dropout.seed, (skip + count + 3) / 4, bits);
    for (int64_t i = 0; i < count; ++i)
      drop_scale[c + i] = engine::philox_to_unit(bits[skip + i]) < keep_probability ? kept : T(0);
    c += count;
  }
}

// The online softmax's step for one row of a new tile of scores (`cols` of them, −inf from `visible`
// on): updates the row's running max m and sum l, turns the row into e^(s − m'), and returns
// e^(m − m'), the factor by which the row's output accumulated so far must be scaled. A row that has
// seen no visible key yet becomes zeros (e^(−inf − (−inf)) would be NaN).
template <typename T>
T online_softmax_row(T* row, int64_t visible, int64_t cols, T& row_max, double& row_sum) {
  std::fill(row + visible, row + cols, T(0));
  const T new_max = visible > 0 ? std::max(row_max, max_of(row, visible)) : row_max;
  if (new_max == -std::numeric_limits<T>::infinity()) {
    std::fill_n(row, visible, T(0));
    return T(1);
  }
  const T correction = vexp(row_max - new_max);
  row_sum = row_sum * double(correction) + sum_exp(row, new_max, visible, row);
  row_max = new_max;
  return correction;
}

// The forward's last step for one query: out_row = acc_row / l (Dv values) and *lse = m + log l, or
// zeros and −inf for a row that saw no key (l = 0 exactly: a visible key adds e^0 = 1). A NaN or +inf
// score makes l NaN, and the row's output and lse NaN, as IEEE arithmetic has it.
template <typename T>
void write_output_row(T* out_row, const T* acc_row, int64_t Dv, T row_max, double row_sum, T* lse) {
  if (row_sum != 0.0) {
    const T inverse = T(1.0 / row_sum);
    for (int64_t d = 0; d < Dv; ++d) out_row[d] = acc_row[d] * inverse;
    *lse = T(double(row_max) + std::log(row_sum));
  } else {
    std::fill_n(out_row, Dv, T(0));
    *lse = -std::numeric_limits<T>::infinity();
  }
}

// The softmax backward of one row of a tile (`cols` keys, −inf scores from `visible` on): p holds the
// row's scores and becomes P = e^(s − lse) (P̃ = P · M/(1 − p), what dV needs, when drop_scale is not
// null); ds holds dO_i·V_j and becomes dS = scale · P ⊙ (dP − δ) with dP = M/(1 − p) · dO_i·V_j. A row
// that sees no key (lse = −inf) has P = dS = 0. With bias_grad (the row's keys in the score bias
// gradient), the gradient of the unscaled score, P ⊙ (dP − δ), is added to it first.
template <typename T>
void probabilities_and_score_grads_row(T* p, T* ds, int64_t visible, int64_t cols, T row_lse, T row_delta, T scale,
                                       const T* drop_scale, T* bias_grad = nullptr) {
  if (row_lse == -std::numeric_limits<T>::infinity()) visible = 0;
  std::fill(p + visible, p + cols, T(0));
  std::fill(ds + visible, ds + cols, T(0));
  exp_shifted(p, row_lse, visible, p);
  if (bias_grad && drop_scale) {  // one pass each, without branches (omp simd: the rows never overlap)
#pragma omp simd
    for (int64_t c = 0; c < visible; ++c) {
      const T grad = p[c] * (ds[c] * drop_scale[c] - row_delta);
      bias_grad[c] += grad;
      ds[c] = scale * grad;
      p[c] *= drop_scale[c];
    }
    return;
  }
  if (bias_grad) {
#pragma omp simd
    for (int64_t c = 0; c < visible; ++c) {
      const T grad = p[c] * (ds[c] - row_delta);
      bias_grad[c] += grad;
      ds[c] = scale * grad;
    }
    return;
  }
  if (drop_scale) {
    for (int64_t c = 0; c < visible; ++c) {
      ds[c] = scale * p[c] * (ds[c] * drop_scale[c] - row_delta);
      p[c] *= drop_scale[c];
    }
  } else {
    for (int64_t c = 0; c < visible; ++c) ds[c] = scale * p[c] * (ds[c] - row_delta);
  }
}

// Per-thread scratch of the tile steps below: the dropout scales of one row (kept between calls,
// grown, never shrunk).
template <typename T>
T* drop_scales_or_null(std::vector<T>& drop_scale, int64_t cols, int64_t batch_head, int64_t query,
                       int64_t key_start, const AttentionSizes& sizes, const AttentionBias& bias) {
  if (bias.dropout.p == 0.0) return nullptr;
  if (drop_scale.size() < size_t(cols)) drop_scale.resize(size_t(cols));
  dropout_scales(drop_scale.data(), cols, batch_head, query, key_start, sizes, bias.dropout);
  return drop_scale.data();
}

// The online softmax's step for a tile of scores: `rows` queries from query_start (rows `ld` apart)
// against `cols` keys from key_start. Each row becomes e^(s − m') (times M/(1 − p) with dropout), its
// running max and sum (row_max, row_sum: one per row) are updated, and its output accumulated so far
// (row r of acc, Dv values at r·Dv) is rescaled by e^(m − m').
template <typename T>
void online_softmax_tile(T* scores, int64_t ld, int64_t rows, int64_t cols, int64_t batch_head, int64_t query_start,
                         int64_t key_start, const AttentionSizes& sizes, const AttentionBias& bias, T* row_max,
                         double* row_sum, T* acc, int64_t Dv, std::vector<T>& drop_scale) {
  for (int64_t r = 0; r < rows; ++r) {
    T* row = scores + r * ld;
    const T correction = online_softmax_row(row, causally_visible(query_start + r, key_start, cols, sizes, bias), cols,
                                            row_max[r], row_sum[r]);
    if (correction != T(1))
      for (int64_t d = 0; d < Dv; ++d) acc[r * Dv + d] *= correction;
    if (const T* drop = drop_scales_or_null(drop_scale, cols, batch_head, query_start + r, key_start, sizes, bias))
      for (int64_t c = 0; c < cols; ++c) row[c] *= drop[c];
  }
}

// The softmax backward of a tile: `rows` queries from query_start against `cols` keys from
// key_start, rows `ld` apart. probabilities holds the scores and becomes P (P̃ with dropout);
// score_grads holds dO·Vᵀ and becomes dS (probabilities_and_score_grads_row). lse and δ are the
// whole (B·H·Tq) arrays. The score bias gradient, when the bias asks for one, gets the tile's
// dL/ds added.
template <typename T>
void score_grads_tile(T* probabilities, T* score_grads, int64_t ld, int64_t rows, int64_t cols, int64_t batch_head,
                      int64_t query_start, int64_t key_start, const T* lse, const T* delta, const AttentionSizes& sizes,
                      const AttentionBias& bias, std::vector<T>& drop_scale) {
  const int64_t query_row = batch_head * sizes.query_len + query_start;  // of lse and δ
  for (int64_t r = 0; r < rows; ++r) {
    T* bias_grad = score_bias_grad_row<T>(bias, sizes, batch_head, query_start + r);
    probabilities_and_score_grads_row(
        probabilities + r * ld, score_grads + r * ld, causally_visible(query_start + r, key_start, cols, sizes, bias),
        cols, lse[query_row + r], delta[query_row + r], T(bias.scale),
        drop_scales_or_null(drop_scale, cols, batch_head, query_start + r, key_start, sizes, bias),
        bias_grad ? bias_grad + key_start : nullptr);
  }
}

// Runs head_backward(batch_head) for every (batch, head) of the batch, as the one-pass backward
// kernels (attention_avx512.cpp, attention_bf16.cpp) split their work: an item is a (block, head)
// running the block's sequences in order on one thread, so it owns that plane of the score bias
// gradient, which stays in cache from one sequence to the next (one sequence per item without a
// bias gradient).
template <class HeadBackward>
void for_each_backward_head(const AttentionSizes& sizes, const AttentionBias& bias, HeadBackward head_backward) {
  const int64_t blocks = sequence_blocks(sizes, bias), H = sizes.heads;
#pragma omp parallel for schedule(dynamic)
  for (int64_t item = 0; item < blocks * H; ++item)
    for (int64_t batch = item / H; batch < sizes.batch; batch += blocks) head_backward(batch * H + item % H);
}

}  // namespace ops::cpu::detail
