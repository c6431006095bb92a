// f32 attention with every tile product on the bf16 GEMM (attention_bf16.h).
//
//   B = batch, H = heads, Tq / Tk = query / key lengths, Dk = query/key head size, Dv = value head size
//   Bq = kQueryTile (128) queries per tile: one row block of the AMX GEMM (4 of its 32-row blocks)
//   Bk = kKeyTile (256) keys per tile: a query tile sees all of its keys in one at training lengths
//
// The algorithm is attention.cpp's (its header comment has the formulas), the work split
// attention_avx512.cpp's: the forward's item is a tile of queries of one (batch, head), visiting its
// key tiles with the online softmax; the backward's item is a (batch, head) whose thread sums dQ, dK
// and dV in one pass, in a fixed order (query tiles outer, key tiles inner), so the results do not
// depend on the thread count. With a score bias that needs a gradient, a backward item runs a head of
// every sequence of a position block in turn and adds dL/ds into the bias gradient's plane it owns.
//
// Each tile product is one gemm_bf16 call on the calling thread (inside the kernels' parallel region
// it does not share its work). It rounds and packs its operands straight from where they lie: rows of
// Q, K, V and dO at their layouts' strides, and a row-major tile of P or dS read as a transposed
// operand for dV += P̃ᵀ·dO and dK += dSᵀ·Q, so nothing is copied or transposed here. dK and dV are
// summed in the outputs' rows (zeroed first), dQ in its rows from the first key tile on. Under a causal
// mask, key tiles wholly past a query tile's last query are skipped, as in the other kernels; within
// a tile the masked part is multiplied too (its scores are overwritten with −inf, and its zero
// probabilities and score gradients add nothing), where the f32 kernels skip it micro-tile by
// micro-tile.
#include "ops/cpu/attention_bf16.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "ops/cpu/attention_scores.h"
#include "ops/cpu/gemm.h"

namespace ops::cpu {

namespace {

using namespace detail;

constexpr int64_t kQueryTile = 128, kKeyTile = 256;

// Per-thread buffers, kept between calls (grown, never shrunk).
struct Scratch {
  std::vector<float> scores;       // (Bq, Bk): S, then P (P̃ in the backward with dropout)
  std::vector<float> score_grads;  // (Bq, Bk): dO·Vᵀ, then dS (backward)
  std::vector<float> acc;          // (Bq, Dv): the output being summed (forward)
  std::vector<float> row_max;      // (Bq)
  std::vector<double> row_sum;     // (Bq)
  std::vector<float> drop_scale;   // (Bk): M / (1 − p) of one row, with dropout
};

Scratch& thread_scratch() {
  thread_local Scratch scratch;
  return scratch;
}

// The forward for the tile of queries from query_start of head `batch_head`.
void forward_query_tile(float* out, float* lse, const float* q, const float* k, const float* v, int64_t batch_head,
                        int64_t query_start, const AttentionSizes& sizes, const AttentionBias& bias,
                        const AttentionLayouts& layouts, Scratch& s) {
  const int64_t Tq = sizes.query_len, Dk = sizes.qk_dim, Dv = sizes.value_dim, H = sizes.heads;
  const int64_t rows = std::min(kQueryTile, Tq - query_start);
  s.scores.resize(size_t(kQueryTile * kKeyTile));
  s.acc.assign(size_t(rows * Dv), 0.f);
  s.row_max.assign(size_t(rows), -std::numeric_limits<float>::infinity());
  s.row_sum.assign(size_t(rows), 0.0);
  float* const scores = s.scores.data();
  const float* const queries = row_at(q, layouts.q, H, batch_head, query_start);

  const int64_t key_end = visible_key_end(query_start, rows, sizes, bias);
  for (int64_t key_start = 0; key_start < key_end; key_start += kKeyTile) {
    const int64_t cols = std::min(kKeyTile, key_end - key_start);
    // S = Q·Kᵀ, then scaled, biased and masked in f32.
    gemm_bf16(false, true, rows, cols, Dk, 1.f, queries, layouts.q.row, row_at(k, layouts.k, H, batch_head, key_start),
              layouts.k.row, 0.f, scores, kKeyTile);
    scale_bias_and_mask(scores, kKeyTile, rows, cols, batch_head, query_start, key_start, sizes, bias);
    online_softmax_tile(scores, kKeyTile, rows, cols, batch_head, query_start, key_start, sizes, bias,
                        s.row_max.data(), s.row_sum.data(), s.acc.data(), Dv, s.drop_scale);
    // acc += P·V.
    gemm_bf16(false, false, rows, Dv, cols, 1.f, scores, kKeyTile, row_at(v, layouts.v, H, batch_head, key_start),
              layouts.v.row, 1.f, s.acc.data(), Dv);
  }
  for (int64_t r = 0; r < rows; ++r)
    write_output_row(row_at(out, layouts.out, H, batch_head, query_start + r), s.acc.data() + r * Dv, Dv,
                     s.row_max[size_t(r)], s.row_sum[size_t(r)], lse + batch_head * Tq + query_start + r);
}

// Zeroes rows [t, t + count) of `width` values of head `batch_head` of an operand laid out as `layout`.
void zero_rows(float* base, const RowLayout& layout, int64_t heads, int64_t batch_head, int64_t t, int64_t count,
               int64_t width) {
  for (int64_t r = t; r < t + count; ++r) std::fill_n(row_at(base, layout, heads, batch_head, r), width, 0.f);
}

// dQ, dK and dV of head `batch_head`.
void backward_head(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k, const float* v,
                   const float* lse, const float* delta, int64_t batch_head, const AttentionSizes& sizes,
                   const AttentionBias& bias, const AttentionLayouts& layouts, Scratch& s) {
  const int64_t Tq = sizes.query_len, Tk = sizes.key_len, Dk = sizes.qk_dim, Dv = sizes.value_dim, H = sizes.heads;
  zero_rows(dk, layouts.dk, H, batch_head, 0, Tk, Dk);
  zero_rows(dv, layouts.dv, H, batch_head, 0, Tk, Dv);
  s.scores.resize(size_t(kQueryTile * kKeyTile));
  s.score_grads.resize(size_t(kQueryTile * kKeyTile));
  float* const probabilities = s.scores.data();
  float* const score_grads = s.score_grads.data();

  for (int64_t query_start = 0; query_start < Tq; query_start += kQueryTile) {
    const int64_t rows = std::min(kQueryTile, Tq - query_start);
    const float* const queries = row_at(q, layouts.q, H, batch_head, query_start);
    const float* const douts = row_at(dout, layouts.dout, H, batch_head, query_start);
    float* const query_grads = row_at(dq, layouts.dq, H, batch_head, query_start);
    const int64_t key_end = visible_key_end(query_start, rows, sizes, bias);
    if (key_end == 0) zero_rows(dq, layouts.dq, H, batch_head, query_start, rows, Dk);  // the tile sees no key

    for (int64_t key_start = 0; key_start < key_end; key_start += kKeyTile) {
      const int64_t cols = std::min(kKeyTile, key_end - key_start);
      const float* const keys = row_at(k, layouts.k, H, batch_head, key_start);
      // S = Q·Kᵀ (as the forward had it) and dO·Vᵀ, then P and dS row by row in f32.
      gemm_bf16(false, true, rows, cols, Dk, 1.f, queries, layouts.q.row, keys, layouts.k.row, 0.f, probabilities,
                kKeyTile);
      scale_bias_and_mask(probabilities, kKeyTile, rows, cols, batch_head, query_start, key_start, sizes, bias);
      gemm_bf16(false, true, rows, cols, Dv, 1.f, douts, layouts.dout.row,
                row_at(v, layouts.v, H, batch_head, key_start), layouts.v.row, 0.f, score_grads, kKeyTile);
      score_grads_tile(probabilities, score_grads, kKeyTile, rows, cols, batch_head, query_start, key_start, lse,
                       delta, sizes, bias, s.drop_scale);
      // dV += P̃ᵀ·dO and dK += dSᵀ·Q: the tiles read as transposed A.
      gemm_bf16(true, false, cols, Dv, rows, 1.f, probabilities, kKeyTile, douts, layouts.dout.row, 1.f,
                row_at(dv, layouts.dv, H, batch_head, key_start), layouts.dv.row);
      gemm_bf16(true, false, cols, Dk, rows, 1.f, score_grads, kKeyTile, queries, layouts.q.row, 1.f,
                row_at(dk, layouts.dk, H, batch_head, key_start), layouts.dk.row);
      // dQ += dS·K (= on the first key tile).
      gemm_bf16(false, false, rows, Dk, cols, 1.f, score_grads, kKeyTile, keys, layouts.k.row,
                key_start == 0 ? 0.f : 1.f, query_grads, layouts.dq.row);
    }
  }
}

}  // namespace

void attention_forward_bf16(float* out, float* lse, const float* q, const float* k, const float* v,
                            const AttentionSizes& sizes, const AttentionBias& bias, const AttentionLayouts& layouts) {
  const int64_t heads = sizes.batch * sizes.heads, query_tiles = (sizes.query_len + kQueryTile - 1) / kQueryTile;
  // Dynamic: under a causal mask later query tiles see more keys.
#pragma omp parallel for schedule(dynamic)
  for (int64_t item = 0; item < heads * query_tiles; ++item)
    forward_query_tile(out, lse, q, k, v, item / query_tiles, (item % query_tiles) * kQueryTile, sizes, bias, layouts,
                       thread_scratch());
}

void attention_backward_bf16(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                             const float* v, const float* lse, const float* delta, const AttentionSizes& sizes,
                             const AttentionBias& bias, const AttentionLayouts& layouts) {
  for_each_backward_head(sizes, bias, [&](int64_t batch_head) {
    backward_head(dq, dk, dv, dout, q, k, v, lse, delta, batch_head, sizes, bias, layouts, thread_scratch());
  });
}

}  // namespace ops::cpu
