// f32 attention with every tile product on the AVX-512 GEMM micro-kernel (attention_avx512.h).
//
//   B = batch, H = heads, Tq / Tk = query / key lengths, Dk = query/key head size, Dv = value head size
//   Bq = kQueryTile (96) queries per tile: 8 micro-kernel panels of 12 rows
//   Bk = kKeyTile (288) keys per tile: 9 panels of 32 columns, or 24 of 12 rows (dK, dV)
//
// The algorithm is attention.cpp's (read its header comment for the formulas); what differs is how
// the tile products are done. There, each is an Eigen product of 64 x 64 tiles that packs both of its
// operands again for 131k multiply-adds (D = 32): attention ran at ~20 % of the FMA peak, 18 % of a
// GPT step (docs/benchmarks.md, 2026-11-29). Here:
// - Kᵀ of a head (and in the backward Vᵀ) is packed once as B panels and shared by all of its query
//   tiles; Q of a query tile (and dO) once as A panels, shared by all of its key tiles.
// - Operands already laid out as the micro-kernel reads them are not packed at all: rows of V, dO, Q
//   and K are B rows (their D values contiguous), and a row-major tile of P or dS is a transposed A
//   (12 consecutive keys of one query) for out += P·V's transpose, dV += P̃ᵀ·dO and dK += dSᵀ·Q. P for
//   out += P·V and dS for dQ += dS·K are needed the other way round: one pass of 16 x 16 register
//   transposes per tile.
// - The backward's work item is a whole (batch, head): its thread sums dQ, dK and dV in one pass, in
//   a fixed order (query tiles outer, key tiles inner), so it needs neither attention.cpp's second
//   pass for dQ nor kept dS tiles, and its results do not depend on the thread count; it keeps dK and
//   dV of the head (Tk x (Dk + Dv)) in scratch, and uses at most B·H threads. With a score bias that
//   needs a gradient, an item runs a head of every sequence of a position block in turn, summing
//   dL/ds into the bias gradient's plane it owns (at most P·H threads).
// - The forward's work item is a (batch, head) and a run of its query tiles: a whole head while there
//   are two heads per thread or more, shorter runs (each packing Kᵀ again) otherwise.
// - Under a causal mask, each 12-row panel of a tile product skips the micro-tiles and the depth that
//   lie wholly past the diagonal (masked scores, zero probabilities): at T = 256 with these tiles a
//   third of the products' work was masked (CausalSkip).
// Lanes the micro-kernel reads past the last row of a partial panel feed rows of its result that are
// never stored, so the scratch tiles need no clearing.
#include "ops/cpu/attention_avx512.h"

#ifdef __AVX512F__

#include <omp.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "ops/cpu/attention_scores.h"
#include "ops/cpu/sgemm_avx512_kernels.h"

namespace ops::cpu {

namespace {

using namespace detail;

// Key tiles are long so that the row-wise softmax steps, whose cost per row is partly fixed, run over
// many keys at once: at T <= 288 (training lengths) a query tile sees all of its keys in one.
constexpr int64_t kQueryTile = 8 * kRows, kKeyTile = 3 * kQueryTile;
static_assert(kKeyTile % kCols == 0 && kKeyTile % kRows == 0, "key tiles start on a B panel and an A panel");

// How the micro-kernel walks an operand: its panel of rows (A) or columns (B) i, i+1, ... starts at
// base + i·step, and each step along the product's depth moves it `stride` further.
struct Operand {
  const float* base;
  int64_t step, stride;
};
// Panels packed by pack_a / pack_b with this depth.
Operand packed_a(const float* panels, int64_t depth) { return {panels, depth, kRows}; }
Operand packed_b(const float* panels, int64_t depth) { return {panels, depth, kCols}; }
// A row-major matrix whose rows run along the depth: rows of B as they are, or A stored transposed.
Operand depth_rows(const float* matrix, int64_t ld) { return {matrix, 1, ld}; }

// What a tile product may leave out under the causal mask, whose diagonal is `diagonal`: query row
// q of the tile sees key column k when k <= q + diagonal (diagonal = the position of the tile's first
// query − its first key). Each panel of kRows rows of C drops what no row of it needs:
enum class CausalSkip {
  none,
  columns,       // rows are queries, columns keys (S = Q·Kᵀ, dP = dO·Vᵀ): micro-tiles wholly past the
                 // diagonal are not computed (left unwritten: scale_bias_and_mask and the row steps
                 // overwrite masked scores)
  depth_end,     // rows are queries, depth keys (out += P·V, dQ += dS·K): the depth past the diagonal,
                 // where P and dS are zeros
  depth_begin,   // rows are keys, depth queries (dV += P̃ᵀ·dO, dK += dSᵀ·Q): the queries before the
                 // first that sees the panel's first key
};
struct Causal {
  CausalSkip skip = CausalSkip::none;
  int64_t diagonal = 0;
};

// C[0:rows, 0:cols] = A·B + beta·C over `depth`, micro-tile by micro-tile. What `causal` leaves out
// is zeros (or masked), so the result is the full product's, bit for bit: each micro-tile's sum runs
// over the same nonzero terms in the same order.
void tile_product(int64_t rows, int64_t cols, int64_t depth, const Operand& a, const Operand& b, float beta, float* C,
                  int64_t ldc, const Causal& causal = {}) {
  for (int64_t i = 0; i < rows; i += kRows) {
    const int64_t panel_rows = std::min(kRows, rows - i), last_row = i + panel_rows - 1;
    int64_t col_end = cols, depth_begin = 0, depth_end = depth;
    switch (causal.skip) {
      case CausalSkip::none: break;
      case CausalSkip::columns: col_end = std::clamp<int64_t>(last_row + causal.diagonal + 1, 0, cols); break;
      case CausalSkip::depth_end: depth_end = std::clamp<int64_t>(last_row + causal.diagonal + 1, 0, depth); break;
      case CausalSkip::depth_begin: depth_begin = std::clamp<int64_t>(i - causal.diagonal, 0, depth); break;
    }
    if (depth_end <= depth_begin && beta == 1.f) continue;  // nothing to add
    for (int64_t j = 0; j < col_end; j += kCols)
      micro_kernel(depth_end - depth_begin, a.base + i * a.step + depth_begin * a.stride, a.stride,
                   b.base + j * b.step + depth_begin * b.stride, b.stride, 1.f, beta, C + i * ldc + j, ldc,
                   panel_rows, std::min(kCols, cols - j));
  }
}

// The causal diagonal of the tile of queries from query_start and keys from key_start, for `skip`;
// none without a causal mask.
Causal causal_tile(CausalSkip skip, int64_t query_start, int64_t key_start, const AttentionSizes& sizes,
                   const AttentionBias& bias) {
  if (!bias.causal) return {};
  return {skip, query_start + sizes.key_len - sizes.query_len - key_start};
}

// A head's operand from row t on: the row's pointer and the stride between rows.
struct HeadRows {
  const float* rows;
  int64_t ld;
};
HeadRows head_rows(const float* base, const RowLayout& layout, int64_t heads, int64_t batch_head, int64_t t) {
  return {row_at(base, layout, heads, batch_head, t), layout.row};
}

int64_t round_up(int64_t n, int64_t multiple) { return (n + multiple - 1) / multiple * multiple; }

// Per-thread buffers, kept between calls (grown, never shrunk).
struct Scratch {
  PackingBuffer keys_t, values_t;  // Kᵀ, Vᵀ of a head: B panels, depth Dk / Dv
  PackingBuffer queries, douts;    // Q, dO of a query tile: A panels, depth Dk / Dv
  PackingBuffer scores;            // (Bq, Bk): S, then P (P̃ in the backward with dropout)
  PackingBuffer score_grads;       // (Bq, Bk): dO·Vᵀ, then dS (backward)
  PackingBuffer transposed;        // (Bk, Bq): P or dS transposed
  PackingBuffer query_acc;         // (Bq, Dv) output or (Bq, Dk) dQ being summed
  PackingBuffer key_grads, value_grads;  // (Tk, Dk) dK and (Tk, Dv) dV of a head (backward)
  std::vector<float> row_max, drop_scale;
  std::vector<double> row_sum;
};

Scratch& thread_scratch() {
  thread_local Scratch scratch;
  return scratch;
}

// The scores of `rows` queries from query_start (Q packed as A panels) against `cols` keys from
// key_start (Kᵀ of the head packed as B panels): scale · Q·Kᵀ, biased and masked, rows kKeyTile apart.
void score_tile(float* scores, const float* queries, const float* keys_t, int64_t rows, int64_t cols,
                int64_t batch_head, int64_t query_start, int64_t key_start, const AttentionSizes& sizes,
                const AttentionBias& bias) {
  const int64_t Dk = sizes.qk_dim;
  tile_product(rows, cols, Dk, packed_a(queries, Dk), packed_b(keys_t + key_start * Dk, Dk), 0.f, scores, kKeyTile,
               causal_tile(CausalSkip::columns, query_start, key_start, sizes, bias));
  scale_bias_and_mask(scores, kKeyTile, rows, cols, batch_head, query_start, key_start, sizes, bias);
}

// The forward for query tiles [first_tile, end_tile) of head `batch_head`.
void forward_run(float* out, float* lse, const float* q, const float* k, const float* v, int64_t batch_head,
                 int64_t first_tile, int64_t end_tile, const AttentionSizes& sizes, const AttentionBias& bias,
                 const AttentionLayouts& layouts, Scratch& s) {
  const int64_t Tq = sizes.query_len, Dk = sizes.qk_dim, Dv = sizes.value_dim, H = sizes.heads;
  const int64_t last_start = (end_tile - 1) * kQueryTile;
  const int64_t key_count = visible_key_end(last_start, std::min(kQueryTile, Tq - last_start), sizes, bias);
  float* const keys_t = s.keys_t.get(round_up(key_count, kCols) * Dk);
  const HeadRows k_rows = head_rows(k, layouts.k, H, batch_head, 0);
  pack_b(true, k_rows.rows, k_rows.ld, Dk, key_count, keys_t);

  float* const queries = s.queries.get(kQueryTile * Dk);
  float* const scores = s.scores.get(kQueryTile * kKeyTile);
  float* const transposed = s.transposed.get(kKeyTile * kQueryTile);
  float* const acc = s.query_acc.get(kQueryTile * Dv);
  s.row_max.resize(size_t(kQueryTile));
  s.row_sum.resize(size_t(kQueryTile));
  for (int64_t tile = first_tile; tile < end_tile; ++tile) {
    const int64_t query_start = tile * kQueryTile, rows = std::min(kQueryTile, Tq - query_start);
    const HeadRows q_rows = head_rows(q, layouts.q, H, batch_head, query_start);
    pack_a(false, q_rows.rows, q_rows.ld, rows, Dk, queries);
    std::fill_n(acc, rows * Dv, 0.f);
    std::fill_n(s.row_max.begin(), rows, -std::numeric_limits<float>::infinity());
    std::fill_n(s.row_sum.begin(), rows, 0.0);

    const int64_t key_end = visible_key_end(query_start, rows, sizes, bias);
    for (int64_t key_start = 0; key_start < key_end; key_start += kKeyTile) {
      const int64_t cols = std::min(kKeyTile, key_end - key_start);
      score_tile(scores, queries, keys_t, rows, cols, batch_head, query_start, key_start, sizes, bias);
      online_softmax_tile(scores, kKeyTile, rows, cols, batch_head, query_start, key_start, sizes, bias,
                          s.row_max.data(), s.row_sum.data(), acc, Dv, s.drop_scale);
      // acc += P·V: P read as a transposed A, V's rows as B rows.
      transpose_matrix(scores, kKeyTile, rows, cols, transposed, kQueryTile);
      const HeadRows v_rows = head_rows(v, layouts.v, H, batch_head, key_start);
      tile_product(rows, Dv, cols, depth_rows(transposed, kQueryTile), depth_rows(v_rows.rows, v_rows.ld), 1.f, acc,
                   Dv, causal_tile(CausalSkip::depth_end, query_start, key_start, sizes, bias));
    }
    for (int64_t r = 0; r < rows; ++r)
      write_output_row(row_at(out, layouts.out, H, batch_head, query_start + r), acc + r * Dv, Dv, s.row_max[size_t(r)],
                       s.row_sum[size_t(r)], lse + batch_head * Tq + query_start + r);
  }
}

// Copies `count` rows of `width` from a dense (count, width) buffer to rows of `layout`.
void store_rows(float* base, const RowLayout& layout, int64_t heads, int64_t batch_head, int64_t t, int64_t count,
                int64_t width, const float* rows) {
  for (int64_t r = 0; r < count; ++r) {
    float* out = row_at(base, layout, heads, batch_head, t + r);
    for (int64_t d = 0; d < width; ++d) out[d] = rows[r * width + d];  // (std::copy_n: a memmove call per row)
  }
}

// dQ, dK and dV of head `batch_head`.
void backward_head(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k, const float* v,
                   const float* lse, const float* delta, int64_t batch_head, const AttentionSizes& sizes,
                   const AttentionBias& bias, const AttentionLayouts& layouts, Scratch& s) {
  const int64_t Tq = sizes.query_len, Tk = sizes.key_len, Dk = sizes.qk_dim, Dv = sizes.value_dim, H = sizes.heads;
  float* const keys_t = s.keys_t.get(round_up(Tk, kCols) * Dk);
  float* const values_t = s.values_t.get(round_up(Tk, kCols) * Dv);
  const HeadRows k_rows = head_rows(k, layouts.k, H, batch_head, 0), v_rows = head_rows(v, layouts.v, H, batch_head, 0);
  pack_b(true, k_rows.rows, k_rows.ld, Dk, Tk, keys_t);
  pack_b(true, v_rows.rows, v_rows.ld, Dv, Tk, values_t);
  float* const key_grads = s.key_grads.get(Tk * Dk);
  float* const value_grads = s.value_grads.get(Tk * Dv);
  std::fill_n(key_grads, Tk * Dk, 0.f);
  std::fill_n(value_grads, Tk * Dv, 0.f);

  float* const queries = s.queries.get(kQueryTile * Dk);
  float* const douts = s.douts.get(kQueryTile * Dv);
  float* const probabilities = s.scores.get(kQueryTile * kKeyTile);
  float* const score_grads = s.score_grads.get(kQueryTile * kKeyTile);
  float* const transposed = s.transposed.get(kKeyTile * kQueryTile);
  float* const query_grads = s.query_acc.get(kQueryTile * Dk);
  for (int64_t query_start = 0; query_start < Tq; query_start += kQueryTile) {
    const int64_t rows = std::min(kQueryTile, Tq - query_start);
    const HeadRows q_rows = head_rows(q, layouts.q, H, batch_head, query_start);
    const HeadRows dout_rows = head_rows(dout, layouts.dout, H, batch_head, query_start);
    pack_a(false, q_rows.rows, q_rows.ld, rows, Dk, queries);
    pack_a(false, dout_rows.rows, dout_rows.ld, rows, Dv, douts);
    std::fill_n(query_grads, rows * Dk, 0.f);

    const int64_t key_end = visible_key_end(query_start, rows, sizes, bias);
    for (int64_t key_start = 0; key_start < key_end; key_start += kKeyTile) {
      const int64_t cols = std::min(kKeyTile, key_end - key_start);
      score_tile(probabilities, queries, keys_t, rows, cols, batch_head, query_start, key_start, sizes, bias);
      tile_product(rows, cols, Dv, packed_a(douts, Dv), packed_b(values_t + key_start * Dv, Dv), 0.f, score_grads,
                   kKeyTile, causal_tile(CausalSkip::columns, query_start, key_start, sizes, bias));
      score_grads_tile(probabilities, score_grads, kKeyTile, rows, cols, batch_head, query_start, key_start, lse,
                       delta, sizes, bias, s.drop_scale);

      // dV += P̃ᵀ·dO and dK += dSᵀ·Q: the tiles as transposed A, dO's and Q's rows as B rows.
      const Causal key_major = causal_tile(CausalSkip::depth_begin, query_start, key_start, sizes, bias);
      tile_product(cols, Dv, rows, depth_rows(probabilities, kKeyTile), depth_rows(dout_rows.rows, dout_rows.ld), 1.f,
                   value_grads + key_start * Dv, Dv, key_major);
      tile_product(cols, Dk, rows, depth_rows(score_grads, kKeyTile), depth_rows(q_rows.rows, q_rows.ld), 1.f,
                   key_grads + key_start * Dk, Dk, key_major);
      // dQ += dS·K: dS transposed, K's rows as B rows.
      transpose_matrix(score_grads, kKeyTile, rows, cols, transposed, kQueryTile);
      const HeadRows key_tile = head_rows(k, layouts.k, H, batch_head, key_start);
      tile_product(rows, Dk, cols, depth_rows(transposed, kQueryTile), depth_rows(key_tile.rows, key_tile.ld), 1.f,
                   query_grads, Dk, causal_tile(CausalSkip::depth_end, query_start, key_start, sizes, bias));
    }
    store_rows(dq, layouts.dq, H, batch_head, query_start, rows, Dk, query_grads);
  }
  store_rows(dk, layouts.dk, H, batch_head, 0, Tk, Dk, key_grads);
  store_rows(dv, layouts.dv, H, batch_head, 0, Tk, Dv, value_grads);
}

}  // namespace

void attention_forward_avx512(float* out, float* lse, const float* q, const float* k, const float* v,
                              const AttentionSizes& sizes, const AttentionBias& bias, const AttentionLayouts& layouts) {
  const int64_t heads = sizes.batch * sizes.heads, query_tiles = (sizes.query_len + kQueryTile - 1) / kQueryTile;
  if (heads == 0 || query_tiles == 0) return;
  const int64_t threads = omp_get_max_threads();
  const int64_t runs = std::clamp<int64_t>((2 * threads + heads - 1) / heads, 1, query_tiles);  // per head
  // With a score bias, the items run the sequences of one head in turn, so that a thread's next item
  // reads the bias plane its last one brought into cache (with P = 1, every sequence reads the same).
  const int64_t B = sizes.batch, H = sizes.heads;
#pragma omp parallel for schedule(dynamic)
  for (int64_t item = 0; item < heads * runs; ++item) {
    const int64_t run = item % runs, index = item / runs;
    const int64_t batch_head = bias.score_bias ? (index % B) * H + index / B : index;
    forward_run(out, lse, q, k, v, batch_head, run * query_tiles / runs, (run + 1) * query_tiles / runs, sizes, bias,
                layouts, thread_scratch());
  }
}

void attention_backward_avx512(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                               const float* v, const float* lse, const float* delta, const AttentionSizes& sizes,
                               const AttentionBias& bias, const AttentionLayouts& layouts) {
  for_each_backward_head(sizes, bias, [&](int64_t batch_head) {
    backward_head(dq, dk, dv, dout, q, k, v, lse, delta, batch_head, sizes, bias, layouts, thread_scratch());
  });
}

}  // namespace ops::cpu

#endif  // __AVX512F__
