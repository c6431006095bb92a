// Attention over at most 16 keys (attention_few_keys.h). A work item is one (batch, head), and a
// query's work is a handful of vector loops over D: its Tk dot products with the keys (and in the
// backward with the values), out += p_j · v_j, dQ += dS_j · k_j, dK_j += dS_j · q, dV_j += P̃_j · dO.
// A query's row of scores goes through the same steps as a tile row of the tiled kernels
// (scale_bias_and_mask, online_softmax_row, probabilities_and_score_grads_row), so masks, ALiBi and
// dropout mean the same. Each head's dK and dV sum over its queries in order on one thread: results
// do not depend on the thread count.
#include "ops/cpu/attention_few_keys.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "ops/cpu/attention_scores.h"

namespace ops::cpu {

namespace {

using namespace detail;

// x · y over D values: one vector of partial sums, then halved and added until one is left (a plain
// reduction loop ends in a sequential sum of the lanes, 16 dependent additions for f32).
template <typename T>
T dot(const T* x, const T* y, int64_t D) {
  constexpr int64_t kLanes = 64 / sizeof(T);  // one AVX-512 vector
  T lanes[kLanes] = {};
  int64_t d = 0;
  for (; d + kLanes <= D; d += kLanes)
#pragma omp simd
    for (int64_t l = 0; l < kLanes; ++l) lanes[l] += x[d + l] * y[d + l];
  for (int64_t l = 0; d < D; ++d, ++l) lanes[l] += x[d] * y[d];
  for (int64_t width = kLanes / 2; width > 0; width /= 2)
    for (int64_t l = 0; l < width; ++l) lanes[l] += lanes[l + width];
  return lanes[0];
}

// dots[j] = x · row j for the Tk rows from `rows`, `ld` apart.
template <typename T>
void dots_with_rows(T* dots, const T* x, const T* rows, int64_t ld, int64_t Tk, int64_t D) {
  for (int64_t j = 0; j < Tk; ++j) dots[j] = dot(x, rows + j * ld, D);
}

// y += a · x over D values (never overlapping).
template <typename T>
void add_scaled(T* y, T a, const T* x, int64_t D) {
#pragma omp simd
  for (int64_t d = 0; d < D; ++d) y[d] += a * x[d];
}

// Asks for the rows of head `batch_head` of q, k, v and dout (null in the forward) to be brought into
// the cache: the next head's rows lie elsewhere in the (B, T, 3C) projection, so the hardware
// prefetcher does not see them coming (a head's work is short).
template <typename T>
void prefetch_head(const T* q, const T* k, const T* v, const T* dout, int64_t batch_head, const AttentionSizes& sizes,
                   const AttentionLayouts& layouts) {
  auto rows = [&](const T* base, const RowLayout& layout, int64_t count, int64_t D) {
    for (int64_t t = 0; t < count; ++t) {
      const char* row = reinterpret_cast<const char*>(row_at(base, layout, sizes.heads, batch_head, t));
      for (int64_t byte = 0; byte < D * int64_t(sizeof(T)); byte += 64) __builtin_prefetch(row + byte);
    }
  };
  rows(q, layouts.q, sizes.query_len, sizes.qk_dim);
  rows(k, layouts.k, sizes.key_len, sizes.qk_dim);
  rows(v, layouts.v, sizes.key_len, sizes.value_dim);
  if (dout) rows(dout, layouts.dout, sizes.query_len, sizes.value_dim);
}

// Per-thread buffers of one call.
template <typename T>
struct Scratch {
  explicit Scratch(const AttentionSizes& s)
      : acc(size_t(s.value_dim)), key_grads(size_t(s.key_len * s.qk_dim)),
        value_grads(size_t(s.key_len * s.value_dim)) {}
  std::vector<T> acc;                        // (Dv): a query's Σ_j p_j v_j
  std::vector<T> key_grads, value_grads;     // (Tk, Dk), (Tk, Dv) of a head
  T scores[kFewKeys], score_grads[kFewKeys];  // a query's row
  T drop_scale[kFewKeys];
};

// drop_scale of query `query`'s Tk probabilities when dropout is on; null otherwise.
template <typename T>
const T* drop_scales_or_null(Scratch<T>& s, int64_t batch_head, int64_t query, const AttentionSizes& sizes,
                             const AttentionBias& bias) {
  if (bias.dropout.p == 0.0) return nullptr;
  dropout_scales(s.drop_scale, sizes.key_len, batch_head, query, 0, sizes, bias.dropout);
  return s.drop_scale;
}

template <typename T>
void forward_head(T* out, T* lse, const T* q, const T* k, const T* v, int64_t batch_head, const AttentionSizes& sizes,
                  const AttentionBias& bias, const AttentionLayouts& layouts, Scratch<T>& s) {
  const int64_t Tq = sizes.query_len, Tk = sizes.key_len, Dk = sizes.qk_dim, Dv = sizes.value_dim, H = sizes.heads;
  const T* k_rows = row_at(k, layouts.k, H, batch_head, 0);
  const T* v_rows = row_at(v, layouts.v, H, batch_head, 0);
  for (int64_t i = 0; i < Tq; ++i) {
    T* row = s.scores;
    dots_with_rows(row, row_at(q, layouts.q, H, batch_head, i), k_rows, layouts.k.row, Tk, Dk);
    scale_bias_and_mask(row, kFewKeys, 1, Tk, batch_head, i, 0, sizes, bias);
    T row_max = -std::numeric_limits<T>::infinity();
    double row_sum = 0.0;
    online_softmax_row(row, causally_visible(i, 0, Tk, sizes, bias), Tk, row_max, row_sum);
    if (const T* drop = drop_scales_or_null(s, batch_head, i, sizes, bias))
      for (int64_t j = 0; j < Tk; ++j) row[j] *= drop[j];
    std::fill(s.acc.begin(), s.acc.end(), T(0));
    for (int64_t j = 0; j < Tk; ++j) add_scaled(s.acc.data(), row[j], v_rows + j * layouts.v.row, Dv);
    write_output_row(row_at(out, layouts.out, H, batch_head, i), s.acc.data(), Dv, row_max, row_sum,
                     lse + batch_head * Tq + i);
  }
}

template <typename T>
void backward_head(T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v, const T* lse,
                   const T* delta, int64_t batch_head, const AttentionSizes& sizes, const AttentionBias& bias,
                   const AttentionLayouts& layouts, Scratch<T>& s) {
  const int64_t Tq = sizes.query_len, Tk = sizes.key_len, Dk = sizes.qk_dim, Dv = sizes.value_dim, H = sizes.heads;
  const T* k_rows = row_at(k, layouts.k, H, batch_head, 0);
  const T* v_rows = row_at(v, layouts.v, H, batch_head, 0);
  std::fill(s.key_grads.begin(), s.key_grads.end(), T(0));
  std::fill(s.value_grads.begin(), s.value_grads.end(), T(0));
  for (int64_t i = 0; i < Tq; ++i) {
    const T* q_row = row_at(q, layouts.q, H, batch_head, i);
    const T* dout_row = row_at(dout, layouts.dout, H, batch_head, i);
    T* p = s.scores;
    T* ds = s.score_grads;
    dots_with_rows(p, q_row, k_rows, layouts.k.row, Tk, Dk);
    scale_bias_and_mask(p, kFewKeys, 1, Tk, batch_head, i, 0, sizes, bias);
    dots_with_rows(ds, dout_row, v_rows, layouts.v.row, Tk, Dv);  // dO_i · V_j
    probabilities_and_score_grads_row(p, ds, causally_visible(i, 0, Tk, sizes, bias), Tk, lse[batch_head * Tq + i],
                                      delta[batch_head * Tq + i], T(bias.scale),
                                      drop_scales_or_null(s, batch_head, i, sizes, bias),
                                      score_bias_grad_row<T>(bias, sizes, batch_head, i));
    T* dq_row = row_at(dq, layouts.dq, H, batch_head, i);
    std::fill_n(dq_row, Dk, T(0));
    for (int64_t j = 0; j < Tk; ++j) {
      add_scaled(dq_row, ds[j], k_rows + j * layouts.k.row, Dk);
      add_scaled(s.key_grads.data() + j * Dk, ds[j], q_row, Dk);
      add_scaled(s.value_grads.data() + j * Dv, p[j], dout_row, Dv);
    }
  }
  for (int64_t j = 0; j < Tk; ++j) {
    std::copy_n(s.key_grads.data() + j * Dk, Dk, row_at(dk, layouts.dk, H, batch_head, j));
    std::copy_n(s.value_grads.data() + j * Dv, Dv, row_at(dv, layouts.dv, H, batch_head, j));
  }
}

// Heads per scheduling chunk: a head is ~1 µs of work.
constexpr int64_t kHeadsPerChunk = 16;

}  // namespace

template <typename T>
void attention_forward_few_keys(T* out, T* lse, const T* q, const T* k, const T* v, const AttentionSizes& sizes,
                                const AttentionBias& bias, const AttentionLayouts& layouts) {
  const int64_t heads = sizes.batch * sizes.heads;
#pragma omp parallel if (heads > 1)
  {
    Scratch<T> scratch(sizes);
#pragma omp for schedule(dynamic, kHeadsPerChunk)
    for (int64_t batch_head = 0; batch_head < heads; ++batch_head) {
      if (batch_head + 1 < heads) prefetch_head<T>(q, k, v, nullptr, batch_head + 1, sizes, layouts);
      forward_head(out, lse, q, k, v, batch_head, sizes, bias, layouts, scratch);
    }
  }
}

template <typename T>
void attention_backward_few_keys(T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v,
                                 const T* lse, const T* delta, const AttentionSizes& sizes, const AttentionBias& bias,
                                 const AttentionLayouts& layouts) {
  // An item is a (block, head) running the block's sequences in order: it owns that plane of the
  // score bias gradient (one sequence per item without one).
  const int64_t blocks = sequence_blocks(sizes, bias), H = sizes.heads, items = blocks * H;
#pragma omp parallel if (items > 1)
  {
    Scratch<T> scratch(sizes);
#pragma omp for schedule(dynamic, kHeadsPerChunk)
    for (int64_t item = 0; item < items; ++item)
      for (int64_t batch = item / H; batch < sizes.batch; batch += blocks) {
        const int64_t batch_head = batch * H + item % H;
        // The head this thread runs next: the block's next sequence, or the next item's first.
        const int64_t next = batch + blocks < sizes.batch ? batch_head + blocks * H : item + 1;
        if (next < sizes.batch * H) prefetch_head(q, k, v, dout, next, sizes, layouts);
        backward_head(dq, dk, dv, dout, q, k, v, lse, delta, batch_head, sizes, bias, layouts, scratch);
      }
  }
}

#define INSTANTIATE(T)                                                                                          \
  template void attention_forward_few_keys<T>(T*, T*, const T*, const T*, const T*, const AttentionSizes&,      \
                                              const AttentionBias&, const AttentionLayouts&);                   \
  template void attention_backward_few_keys<T>(T*, T*, T*, const T*, const T*, const T*, const T*, const T*,   \
                                               const T*, const AttentionSizes&, const AttentionBias&,          \
                                               const AttentionLayouts&);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace ops::cpu
