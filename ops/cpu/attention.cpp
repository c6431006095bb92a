// Tiled scaled dot-product attention on the CPU (FlashAttention's algorithm, Dao et al. 2022,
// with the deterministic backward of FlashAttention-2), its tile products on Eigen: f64, and f32
// where the build does not target AVX-512. f32 on AVX-512 runs attention_avx512.cpp: the same
// algorithm with its own work split, on the GEMM micro-kernel (docs/benchmarks.md has the figures).
// f32 with bf16 products (AttentionBias::bf16_products) runs attention_bf16.cpp, on the bf16 GEMM.
// At most kFewKeys (16) keys, every dtype runs attention_few_keys.cpp: one query at a time, no tiles.
//
//   B = batch, H = heads, Tq / Tk = query / key lengths, Dk = query/key head size, Dv = value head size
//   Bq = Bk = kTile (64): queries / keys per tile; s_ij = scale · q_i·k_j + bias_ij (−inf if masked)
//
// Forward, for each (batch·head, tile of Bq queries), keys visited tile by tile:
//   S = Q·Kᵀ (Bq × Bk), scaled, biased, masked;
//   per row: m' = max(m, max_j s_ij), l' = l·e^(m − m') + Σ_j e^(s_ij − m'), acc' = acc·e^(m − m') + P·V
//   (the online softmax), and at the end out = acc / l, lse = m + log l.
// Only the running m, l (Bq each) and acc (Bq × Dv) live across key tiles.
//
// Dropout on the probabilities (p > 0): P̃ = P ⊙ M / (1 − p) with the mask M regenerated from its
// Philox counters (attention_dropout_keeps). The forward adds P̃·V to acc but P to l (the softmax
// normalises the undropped probabilities), so out = P̃ · V.
//
// Backward: P_ij = e^(s_ij − lse_i) is recomputed tile by tile from q, k and the saved lse, with
//   δ_i = Σ_d dO_id · O_id,  dP = dO·Vᵀ,  dS = scale · P ⊙ (dP − δ),
//   dV += Pᵀ·dO,  dK += dSᵀ·Q,  dQ += dS·K.
// With dropout, dP = M/(1 − p) ⊙ dO·Vᵀ and dV += P̃ᵀ·dO; δ is unchanged, because
// Σ_j P_ij dP_ij = Σ_j P̃_ij (dO_i·V_j) = dO_i·O_i with O the dropped output.
// To stay deterministic without atomics, it runs in two passes: one thread owns a key tile and
// sums its dK, dV over the query tiles in order; a second pass owns a query tile and sums its dQ
// over the key tiles in order. The second pass reads the dS tiles the first one kept (5 tile GEMMs
// per tile pair), or, when they would take more than kKeptScoreGradBytes, recomputes S and dP (7):
// the price of results that do not depend on the thread count.
//
// A score bias (P blocks of (Hb, Tq, Tk), shared by the sequences of a block) is added to the scaled
// scores; its gradient dL/ds = dS / scale is summed by the first pass, whose items are then (block,
// head, key tile), each running the block's sequences in order: no two threads add to one element.
//
// Memory: besides the inputs, outputs and gradients (O(T·D)), the forward keeps lse (B·H·Tq) and the
// backward δ (B·H·Tq); each thread holds O(kTile² + kTile·(Dk + Dv)) scratch. Beyond the kept dS
// tiles' budget no Tq × Tk matrix is stored, so memory is linear in the sequence length.
#include "ops/cpu/attention.h"

// GCC 12 reports a false "may be used uninitialized" inside its own AVX-512 intrinsics when it
// inlines Eigen's GEMM kernels (GCC bug 105593); silenced for this file only.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "ops/cpu/attention_avx512.h"
#include "ops/cpu/attention_bf16.h"
#include "ops/cpu/attention_few_keys.h"
#include "ops/cpu/attention_scores.h"

namespace ops::cpu {

namespace {

using namespace detail;

constexpr int64_t kTile = 64;

template <typename T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using MatrixMap = Eigen::Map<RowMatrix<T>>;
template <typename T>
using ConstMatrixMap = Eigen::Map<const RowMatrix<T>>;
// Rows of an operand, `RowLayout::row` apart.
template <typename T>
using ConstRowsMap = Eigen::Map<const RowMatrix<T>, 0, Eigen::OuterStride<>>;
template <typename T>
using RowsMap = Eigen::Map<RowMatrix<T>, 0, Eigen::OuterStride<>>;

// `count` rows of `width` from row t of head `batch_head`, as a matrix.
template <typename T>
ConstRowsMap<T> const_rows(const T* base, const RowLayout& rows, int64_t heads, int64_t batch_head, int64_t t,
                           int64_t count, int64_t width) {
  return {row_at(base, rows, heads, batch_head, t), count, width, Eigen::OuterStride<>(rows.row)};
}
template <typename T>
RowsMap<T> mutable_rows(T* base, const RowLayout& rows, int64_t heads, int64_t batch_head, int64_t t, int64_t count,
                        int64_t width) {
  return {row_at(base, rows, heads, batch_head, t), count, width, Eigen::OuterStride<>(rows.row)};
}

int64_t tile_count(int64_t length) { return (length + kTile - 1) / kTile; }

// Per-thread buffers of the forward.
template <typename T>
struct ForwardScratch {
  explicit ForwardScratch(const AttentionSizes& sizes)
      : scores(size_t(kTile * kTile)), accumulator(size_t(kTile * sizes.value_dim)), row_max(size_t(kTile)),
        row_sum(size_t(kTile)), drop_scale(size_t(kTile)) {}
  std::vector<T> scores;       // (Bq, Bk): scores, then probabilities (dropped, with dropout)
  std::vector<T> accumulator;  // (Bq, Dv): unnormalised output
  std::vector<T> row_max;      // (Bq)
  std::vector<double> row_sum;  // (Bq)
  std::vector<T> drop_scale;   // (Bk): M / (1 − p) of one row, with dropout
};

// Forward for one tile of queries of one (batch, head): the online softmax over key tiles.
template <typename T>
void forward_query_tile(T* out, T* lse, const T* q, const T* k, const T* v, int64_t batch_head, int64_t query_tile,
                        const AttentionSizes& sizes, const AttentionBias& bias, const AttentionLayouts& layouts,
                        ForwardScratch<T>& scratch) {
  const int64_t Tq = sizes.query_len, Dk = sizes.qk_dim, Dv = sizes.value_dim, H = sizes.heads;
  const int64_t query_start = query_tile * kTile;
  const int64_t rows = std::min(kTile, Tq - query_start);
  const T minus_infinity = -std::numeric_limits<T>::infinity();

  const ConstRowsMap<T> query_block = const_rows(q, layouts.q, H, batch_head, query_start, rows, Dk);
  MatrixMap<T> accumulator(scratch.accumulator.data(), rows, Dv);
  accumulator.setZero();
  std::fill_n(scratch.row_max.begin(), rows, minus_infinity);
  std::fill_n(scratch.row_sum.begin(), rows, 0.0);

  const int64_t key_end = visible_key_end(query_start, rows, sizes, bias);
  for (int64_t key_start = 0; key_start < key_end; key_start += kTile) {
    const int64_t cols = std::min(kTile, key_end - key_start);
    const ConstRowsMap<T> key_block = const_rows(k, layouts.k, H, batch_head, key_start, cols, Dk);
    const ConstRowsMap<T> value_block = const_rows(v, layouts.v, H, batch_head, key_start, cols, Dv);
    MatrixMap<T> scores(scratch.scores.data(), rows, cols);
    scores.noalias() = query_block * key_block.transpose();
    scale_bias_and_mask(scratch.scores.data(), cols, rows, cols, batch_head, query_start, key_start, sizes, bias);
    for (int64_t r = 0; r < rows; ++r) {
      T* row = scratch.scores.data() + r * cols;
      const T correction =
          online_softmax_row(row, causally_visible(query_start + r, key_start, cols, sizes, bias), cols,
                             scratch.row_max[size_t(r)], scratch.row_sum[size_t(r)]);
      if (correction != T(1)) accumulator.row(r) *= correction;
      if (bias.dropout.p > 0.0) {
        dropout_scales(scratch.drop_scale.data(), cols, batch_head, query_start + r, key_start, sizes, bias.dropout);
        for (int64_t c = 0; c < cols; ++c) row[c] *= scratch.drop_scale[size_t(c)];
      }
    }
    accumulator.noalias() += scores * value_block;
  }

  for (int64_t r = 0; r < rows; ++r)
    write_output_row(row_at(out, layouts.out, H, batch_head, query_start + r), &accumulator(r, 0), Dv,
                     scratch.row_max[size_t(r)], scratch.row_sum[size_t(r)], lse + batch_head * Tq + query_start + r);
}

// Per-thread buffers of the backward.
template <typename T>
struct BackwardScratch {
  explicit BackwardScratch(const AttentionSizes& sizes)
      : probabilities(size_t(kTile * kTile)), score_grads(size_t(kTile * kTile)),
        first_grad(size_t(kTile * std::max(sizes.qk_dim, sizes.value_dim))),
        second_grad(size_t(kTile * sizes.value_dim)), drop_scale(size_t(kTile)) {}
  std::vector<T> probabilities;  // (Bq, Bk): P (P̃ with dropout)
  std::vector<T> score_grads;    // (Bq, Bk): dO·Vᵀ, then dS
  std::vector<T> first_grad;     // (Bk, Dk) dK or (Bq, Dk) dQ being summed
  std::vector<T> second_grad;    // (Bk, Dv): dV being summed
  std::vector<T> drop_scale;     // (Bk): M / (1 − p) of one row, with dropout
};

// dS of every tile pair, written by the first pass of the backward for the second; data null when
// they do not fit and the second pass recomputes them. A pair's tile is (rows of its query tile) x
// (the whole key tile), row-major.
template <typename T>
struct KeptScoreGrads {
  T* data = nullptr;
  int64_t query_tiles = 0, key_tiles = 0;
  T* pair(int64_t batch_head, int64_t query_tile, int64_t key_tile) const {
    return data + ((batch_head * query_tiles + query_tile) * key_tiles + key_tile) * kTile * kTile;
  }
};

// Where one (batch·head, query tile, key tile) block of the backward sits.
struct TileBlock {
  int64_t batch_head, query_start, rows, key_start, cols;
};

// Recomputes P (P̃ with dropout, for dV) and dS = scale · P ⊙ (dP − δ) of one tile pair: P into the
// scratch buffer, dS into `score_grads_out` (rows × cols: the scratch buffer, or a kept tile). The
// pass that sums dK, dV (`sum_bias_grad`) also adds the pair's score gradients to the score bias's.
template <typename T>
void probabilities_and_score_grads(const TileBlock& block, const T* dout, const T* q, const T* k, const T* v,
                                   const T* lse, const T* delta, const AttentionSizes& sizes,
                                   const AttentionBias& bias, const AttentionLayouts& layouts,
                                   BackwardScratch<T>& scratch, T* score_grads_out, bool sum_bias_grad) {
  const int64_t Tq = sizes.query_len, Dk = sizes.qk_dim, Dv = sizes.value_dim, H = sizes.heads;
  const int64_t rows = block.rows, cols = block.cols, bh = block.batch_head;
  const int64_t query_row = bh * Tq + block.query_start;  // of lse and δ
  const ConstRowsMap<T> query_block = const_rows(q, layouts.q, H, bh, block.query_start, rows, Dk);
  const ConstRowsMap<T> key_block = const_rows(k, layouts.k, H, bh, block.key_start, cols, Dk);
  const ConstRowsMap<T> value_block = const_rows(v, layouts.v, H, bh, block.key_start, cols, Dv);
  const ConstRowsMap<T> dout_block = const_rows(dout, layouts.dout, H, bh, block.query_start, rows, Dv);
  MatrixMap<T> probabilities(scratch.probabilities.data(), rows, cols);
  MatrixMap<T> score_grads(score_grads_out, rows, cols);

  probabilities.noalias() = query_block * key_block.transpose();
  scale_bias_and_mask(scratch.probabilities.data(), cols, rows, cols, bh, block.query_start, block.key_start, sizes,
                      bias);
  score_grads.noalias() = dout_block * value_block.transpose();

  for (int64_t r = 0; r < rows; ++r) {
    const T* drop_scale = nullptr;
    if (bias.dropout.p > 0.0) {
      dropout_scales(scratch.drop_scale.data(), cols, bh, block.query_start + r, block.key_start, sizes, bias.dropout);
      drop_scale = scratch.drop_scale.data();
    }
    T* bias_grad = sum_bias_grad ? score_bias_grad_row<T>(bias, sizes, bh, block.query_start + r) : nullptr;
    probabilities_and_score_grads_row(scratch.probabilities.data() + r * cols, score_grads_out + r * cols,
                                      causally_visible(block.query_start + r, block.key_start, cols, sizes, bias), cols,
                                      lse[query_row + r], delta[query_row + r], T(bias.scale), drop_scale,
                                      bias_grad ? bias_grad + block.key_start : nullptr);
  }
}

// dK and dV of one key tile, summed over the query tiles in order.
template <typename T>
void key_tile_grads(T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v, const T* lse, const T* delta,
                    int64_t batch_head, int64_t key_tile, const AttentionSizes& sizes, const AttentionBias& bias,
                    const AttentionLayouts& layouts, const KeptScoreGrads<T>& kept, BackwardScratch<T>& scratch) {
  const int64_t Tq = sizes.query_len, Tk = sizes.key_len, Dk = sizes.qk_dim, Dv = sizes.value_dim, H = sizes.heads;
  const int64_t key_start = key_tile * kTile;
  const int64_t cols = std::min(kTile, Tk - key_start);
  MatrixMap<T> key_grad(scratch.first_grad.data(), cols, Dk);
  MatrixMap<T> value_grad(scratch.second_grad.data(), cols, Dv);
  key_grad.setZero();
  value_grad.setZero();

  const int64_t first_query_tile = first_query_seeing(key_start, sizes, bias) / kTile;
  for (int64_t query_start = first_query_tile * kTile; query_start < Tq; query_start += kTile) {
    const TileBlock block{batch_head, query_start, std::min(kTile, Tq - query_start), key_start, cols};
    T* const score_grads_out =
        kept.data ? kept.pair(batch_head, query_start / kTile, key_tile) : scratch.score_grads.data();
    probabilities_and_score_grads(block, dout, q, k, v, lse, delta, sizes, bias, layouts, scratch, score_grads_out,
                                  true);
    const ConstRowsMap<T> query_block = const_rows(q, layouts.q, H, batch_head, query_start, block.rows, Dk);
    const ConstRowsMap<T> dout_block = const_rows(dout, layouts.dout, H, batch_head, query_start, block.rows, Dv);
    MatrixMap<T> probabilities(scratch.probabilities.data(), block.rows, cols);
    MatrixMap<T> score_grads(score_grads_out, block.rows, cols);
    value_grad.noalias() += probabilities.transpose() * dout_block;
    key_grad.noalias() += score_grads.transpose() * query_block;
  }
  mutable_rows(dk, layouts.dk, H, batch_head, key_start, cols, Dk) = key_grad;
  mutable_rows(dv, layouts.dv, H, batch_head, key_start, cols, Dv) = value_grad;
}

// dQ of one query tile, summed over the visible key tiles in order.
template <typename T>
void query_tile_grads(T* dq, const T* dout, const T* q, const T* k, const T* v, const T* lse, const T* delta,
                      int64_t batch_head, int64_t query_tile, const AttentionSizes& sizes, const AttentionBias& bias,
                      const AttentionLayouts& layouts, const KeptScoreGrads<T>& kept, BackwardScratch<T>& scratch) {
  const int64_t Tq = sizes.query_len, Tk = sizes.key_len, Dk = sizes.qk_dim, H = sizes.heads;
  const int64_t query_start = query_tile * kTile;
  const int64_t rows = std::min(kTile, Tq - query_start);
  MatrixMap<T> query_grad(scratch.first_grad.data(), rows, Dk);
  query_grad.setZero();

  const int64_t key_end = visible_key_end(query_start, rows, sizes, bias);
  for (int64_t key_start = 0; key_start < key_end; key_start += kTile) {
    // The first pass's dS spans the whole key tile (its columns past key_end are masked: 0).
    int64_t cols = std::min(kTile, Tk - key_start);
    const T* score_grads = kept.data ? kept.pair(batch_head, query_tile, key_start / kTile) : nullptr;
    if (!score_grads) {
      const TileBlock block{batch_head, query_start, rows, key_start, std::min(kTile, key_end - key_start)};
      probabilities_and_score_grads(block, dout, q, k, v, lse, delta, sizes, bias, layouts, scratch,
                                    scratch.score_grads.data(), false);
      cols = block.cols;
      score_grads = scratch.score_grads.data();
    }
    const ConstRowsMap<T> key_block = const_rows(k, layouts.k, H, batch_head, key_start, cols, Dk);
    query_grad.noalias() += ConstMatrixMap<T>(score_grads, rows, cols) * key_block;
  }
  mutable_rows(dq, layouts.dq, H, batch_head, query_start, rows, Dk) = query_grad;
}

}  // namespace

template <typename T>
void attention_forward(T* out, T* lse, const T* q, const T* k, const T* v, const AttentionSizes& sizes,
                       const AttentionBias& bias, const AttentionLayouts& layouts) {
  if (sizes.key_len <= kFewKeys) return attention_forward_few_keys(out, lse, q, k, v, sizes, bias, layouts);
  if constexpr (std::is_same_v<T, float>)
    if (bias.bf16_products) return attention_forward_bf16(out, lse, q, k, v, sizes, bias, layouts);
#ifdef __AVX512F__
  if constexpr (std::is_same_v<T, float>) return attention_forward_avx512(out, lse, q, k, v, sizes, bias, layouts);
#endif
  const int64_t query_tiles = tile_count(sizes.query_len);
  const int64_t work_items = sizes.batch * sizes.heads * query_tiles;
#pragma omp parallel
  {
    ForwardScratch<T> scratch(sizes);
    // Dynamic: under a causal mask later query tiles see more keys.
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < work_items; ++item)
      forward_query_tile(out, lse, q, k, v, item / query_tiles, item % query_tiles, sizes, bias, layouts, scratch);
  }
}

template <typename T>
void attention_backward(T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v, const T* out,
                        const T* lse, const AttentionSizes& sizes, const AttentionBias& bias,
                        const AttentionLayouts& layouts, int64_t kept_score_grad_bytes) {
  const int64_t batch_heads = sizes.batch * sizes.heads;
  const int64_t Tq = sizes.query_len, query_rows = batch_heads * Tq, Dv = sizes.value_dim, H = sizes.heads;

  // δ_i = Σ_d dO_id · O_id: the row term of the softmax backward.
  std::vector<T> delta(static_cast<size_t>(query_rows));
#pragma omp parallel for
  for (int64_t batch_head = 0; batch_head < batch_heads; ++batch_head) {
    const T* dout_rows = row_at(dout, layouts.dout, H, batch_head, 0);
    const T* out_rows = row_at(out, layouts.out, H, batch_head, 0);
    for (int64_t t = 0; t < Tq; ++t) {
      const T* dout_row = dout_rows + t * layouts.dout.row;
      const T* out_row = out_rows + t * layouts.out.row;
      delta[size_t(batch_head * Tq + t)] =
          T(sum_in_lanes(Dv, [&](int64_t d) { return double(dout_row[d]) * double(out_row[d]); }));
    }
  }
  if (sizes.key_len <= kFewKeys)
    return attention_backward_few_keys(dq, dk, dv, dout, q, k, v, lse, delta.data(), sizes, bias, layouts);
  if constexpr (std::is_same_v<T, float>)
    if (bias.bf16_products)
      return attention_backward_bf16(dq, dk, dv, dout, q, k, v, lse, delta.data(), sizes, bias, layouts);
#ifdef __AVX512F__
  if constexpr (std::is_same_v<T, float>)
    return attention_backward_avx512(dq, dk, dv, dout, q, k, v, lse, delta.data(), sizes, bias, layouts);
#endif

  const int64_t key_tiles = tile_count(sizes.key_len);
  const int64_t query_tiles = tile_count(sizes.query_len);
  const int64_t kept_elements = batch_heads * query_tiles * key_tiles * kTile * kTile;
  // Uninitialised (no pass over 16 MiB to zero it): the first pass writes every tile the second reads.
  std::unique_ptr<T[]> kept_storage;
  if (kept_elements * int64_t(sizeof(T)) <= kept_score_grad_bytes)
    kept_storage = std::make_unique_for_overwrite<T[]>(size_t(kept_elements));
  const KeptScoreGrads<T> kept{kept_storage.get(), query_tiles, key_tiles};
#pragma omp parallel
  {
    BackwardScratch<T> scratch(sizes);
    // A key tile of a (block, head) owns those columns of the score bias gradient: its sequences run
    // in order on one thread.
    const int64_t blocks = sequence_blocks(sizes, bias);
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < blocks * H * key_tiles; ++item) {
      const int64_t block_head = item / key_tiles;
      for (int64_t batch = block_head / H; batch < sizes.batch; batch += blocks)
        key_tile_grads(dk, dv, dout, q, k, v, lse, delta.data(), batch * H + block_head % H, item % key_tiles, sizes,
                       bias, layouts, kept, scratch);
    }
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < batch_heads * query_tiles; ++item)
      query_tile_grads(dq, dout, q, k, v, lse, delta.data(), item / query_tiles, item % query_tiles, sizes, bias,
                       layouts, kept, scratch);
  }
}

template void attention_forward<float>(float*, float*, const float*, const float*, const float*,
                                       const AttentionSizes&, const AttentionBias&, const AttentionLayouts&);
template void attention_forward<double>(double*, double*, const double*, const double*, const double*,
                                        const AttentionSizes&, const AttentionBias&, const AttentionLayouts&);
template void attention_backward<float>(float*, float*, float*, const float*, const float*, const float*,
                                        const float*, const float*, const float*, const AttentionSizes&,
                                        const AttentionBias&, const AttentionLayouts&, int64_t);
template void attention_backward<double>(double*, double*, double*, const double*, const double*, const double*,
                                         const double*, const double*, const double*, const AttentionSizes&,
                                         const AttentionBias&, const AttentionLayouts&, int64_t);

}  // namespace ops::cpu
