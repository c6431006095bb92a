// Tiled scaled dot-product attention on CUDA: the CPU op's algorithm (ops/cpu/attention.cpp) with one
// thread block per tile. Plain CUDA C++: built by nvcc into `ops_cuda` and by g++ under the kernel emulator.
//
//   B = batch, H = heads, Tq / Tk = query / key lengths, Dk = query/key head size, Dv = value head size
//   Bt = kTile: queries and keys per tile (32 for f32, 16 for f64; halved while the tiles of large
//   head sizes would not fit in shared memory); s_ij = scale · q_i·k_j + bias_ij (−inf if masked)
//
// Forward: one block per (batch·head, tile of queries). Q's tile stays in shared memory; K and V come
// in tile by tile. Per tile: S = Q·Kᵀ, then per row the online softmax
//   m' = max(m, max_j s_ij), l' = l·e^(m − m') + Σ_j e^(s_ij − m'), acc' = acc·e^(m − m') + P·V,
// and at the end out = acc / l, lse = m + log l (zeros and −inf for a row that sees no key).
//
// Backward, deterministic without atomics, in three launches:
//   δ_i = Σ_d dO_id · O_id                   one warp per row, summed in double;
//   dK, dV: one block per key tile, summing  dV += Pᵀ·dO, dK += dSᵀ·Q  over the query tiles in order;
//   dQ:     one block per query tile, summing dQ += dS·K over the key tiles in order;
// where P_ij = e^(s_ij − lse_i) is recomputed from the saved lse and dS = scale · P ⊙ (dO·Vᵀ − δ).
//
// A score bias (P, Hb, Tq, Tk), shared by the sequences b ≡ p (mod P) of a position block, is added to
// the scaled scores. Its gradient dL/ds = P ⊙ (dP − δ) is summed by the dQ launch, whose blocks are
// then (query tile, position block·head), each running the block's sequences in order and adding to
// the rows of the bias gradient it owns: deterministic, no atomics, no (B, H, Tq, Tk) buffer.
//
// Dropout on the probabilities (p > 0), as on the CPU: the forward adds P̃ = P ⊙ M/(1 − p) to the
// output but P to l; the backward uses dP = M/(1 − p) ⊙ dO·Vᵀ in dS and P̃ in dV. Each thread
// regenerates the mask element it needs from its Philox counter (cpu::attention_dropout_keeps).
//
// Shared-memory tiles of Q, K, V and dO have rows padded by one element, so a warp reading a column
// (consecutive key rows at one d) hits distinct banks. Sums within a tile run in T in a fixed order
// (one thread per output element), so results do not depend on the launch.
#include "engine/cuda/check.h"
#include "engine/error.h"
#include "ops/cuda/attention.h"

namespace ops::cuda {

namespace {

constexpr int kThreads = 128;
constexpr int kWarpSize = 32;
// Dynamic shared memory every supported GPU grants one block when asked (sm_86/sm_89 allow 99 KiB;
// sm_80 163 KiB; sm_90 227 KiB). Above the default 48 KiB the launcher raises the kernel's limit.
constexpr size_t kSharedLimitBytes = 99 * 1024;
constexpr size_t kDefaultSharedBytes = 48 * 1024;

// Sizes and bias as the kernels take them (by value).
template <typename T>
struct TileParams {
  int64_t query_len, key_len, heads;
  int qk_dim, value_dim;
  T scale;
  bool causal;
  const double* alibi_slopes;  // (H), device, or null
  const int32_t* key_keep;     // (B, Tk), device, or null
  cpu::AttentionDropout dropout;
  T drop_scale;                // 1 / (1 − p): the factor of a kept probability
  const T* score_bias;         // (P, Hb, Tq, Tk), device, or null
  int64_t bias_blocks;         // P
  bool bias_per_head;          // Hb = H (else 1)
  T* bias_grad;                // (P, H, Tq, Tk), device, zero on entry (backward), or null
  int64_t batch, blocks;       // B; the dQ launch's position blocks (P with a bias gradient, else B)
};

template <typename T>
TileParams<T> tile_params(const AttentionSizes& sizes, const AttentionBias& bias) {
  return {sizes.query_len,
          sizes.key_len,
          sizes.heads,
          int(sizes.qk_dim),
          int(sizes.value_dim),
          T(bias.scale),
          bias.causal,
          bias.alibi_slopes,
          bias.key_keep,
          bias.dropout,
          T(cpu::attention_dropout_scale(bias.dropout)),
          static_cast<const T*>(bias.score_bias),
          bias.score_bias_blocks,
          bias.score_bias_per_head,
          static_cast<T*>(bias.score_bias_grad),
          sizes.batch,
          cpu::sequence_blocks(sizes, bias)};
}

// The offset of element (query, key) of the score bias plane that head `batch_head` (b·H + h) reads
// (block b mod P, plane h or 0), or of its gradient's plane (always per head).
template <typename T>
__device__ __forceinline__ int64_t bias_offset(int64_t batch_head, int64_t query, int64_t key, bool per_head,
                                               const TileParams<T>& p) {
  const int64_t block = (batch_head / p.heads) % p.bias_blocks;
  const int64_t plane = per_head ? block * p.heads + batch_head % p.heads : block;
  return (plane * p.query_len + query) * p.key_len + key;
}

// M / (1 − p) of probability (batch·head, query, key).
template <typename T>
__device__ __forceinline__ T dropout_factor(int64_t batch_head, int64_t query, int64_t key, const TileParams<T>& p) {
  const uint64_t element = uint64_t((batch_head * p.query_len + query) * p.key_len + key);
  return cpu::attention_dropout_keeps(p.dropout, element) ? p.drop_scale : T(0);
}

template <typename T>
__device__ __forceinline__ T minus_infinity() {
  return -T(INFINITY);
}
__device__ __forceinline__ float exponential(float x) { return expf(x); }
__device__ __forceinline__ double exponential(double x) { return exp(x); }
__device__ __forceinline__ float logarithm(float x) { return logf(x); }
__device__ __forceinline__ double logarithm(double x) { return log(x); }

// The keys [0, end) that at least one of the `rows` queries from `query_start` may see.
template <typename T>
__host__ __device__ __forceinline__ int64_t visible_key_end(int64_t query_start, int rows, const TileParams<T>& p) {
  if (!p.causal) return p.key_len;
  const int64_t end = query_start + rows + p.key_len - p.query_len;
  return end < 0 ? 0 : (end > p.key_len ? p.key_len : end);
}

// The first query that may see key `key_start`.
template <typename T>
__device__ __forceinline__ int64_t first_query_seeing(int64_t key_start, const TileParams<T>& p) {
  if (!p.causal) return 0;
  const int64_t first = key_start - (p.key_len - p.query_len);
  return first < 0 ? 0 : (first > p.query_len ? p.query_len : first);
}

// The score of query `query` for key `key` from their dot product: scaled, ALiBi- and score-biased,
// or −inf where the causal mask or the key mask hides the key.
template <typename T>
__device__ __forceinline__ T masked_score(T dot, int64_t query, int64_t key, int64_t batch_head, T slope,
                                          const TileParams<T>& p) {
  const int64_t position = query + p.key_len - p.query_len;
  if (p.causal && key > position) return minus_infinity<T>();
  if (p.key_keep && p.key_keep[(batch_head / p.heads) * p.key_len + key] == 0) return minus_infinity<T>();
  T score = dot * p.scale;
  if (p.alibi_slopes) score += slope * T(key - position);
  if (p.score_bias) score += p.score_bias[bias_offset(batch_head, query, key, p.bias_per_head, p)];
  return score;
}

// Copies `rows` rows of `width` elements (contiguous in `src`) into a tile with row stride `ld`;
// rows from `rows` to `tile_rows` are zero-filled.
template <typename T>
__device__ __forceinline__ void load_tile(T* tile, int ld, const T* src, int rows, int width, int tile_rows) {
  for (int index = threadIdx.x; index < tile_rows * width; index += kThreads) {
    const int r = index / width, c = index - r * width;
    tile[r * ld + c] = r < rows ? src[index] : T(0);
  }
}

// Σ_d a[r·ld_a + d] · b[c·ld_b + d] over d < length.
template <typename T>
__device__ __forceinline__ T row_dot(const T* a, const T* b, int length) {
  T sum = T(0);
  for (int d = 0; d < length; ++d) sum += a[d] * b[d];
  return sum;
}

// Shared memory of the forward, in elements of T.
template <int kTile>
size_t forward_shared_elements(int Dk, int Dv) {
  return size_t(kTile) * (2 * (Dk + 1) + (Dv + 1) + Dv + (kTile + 1) + 3);
}

// One block per (query tile, batch·head): the online softmax over the visible key tiles.
template <typename T, int kTile>
__global__ void __launch_bounds__(kThreads)
    attention_forward_kernel(T* out, T* lse, const T* q, const T* k, const T* v, TileParams<T> p) {
  ENGINE_DYNAMIC_SHARED(T, shared);
  const int Dk = p.qk_dim, Dv = p.value_dim;
  const int ldk = Dk + 1, ldv = Dv + 1, lds = kTile + 1;
  T* query_tile = shared;                        // (Bt, Dk + 1)
  T* key_tile = query_tile + kTile * ldk;        // (Bt, Dk + 1)
  T* value_tile = key_tile + kTile * ldk;        // (Bt, Dv + 1)
  T* accumulator = value_tile + kTile * ldv;     // (Bt, Dv)
  T* scores = accumulator + kTile * Dv;          // (Bt, Bt + 1): scores, then probabilities
  T* row_max = scores + kTile * lds;             // (Bt)
  T* row_sum = row_max + kTile;                  // (Bt)
  T* row_correction = row_sum + kTile;           // (Bt): e^(m − m') of the current key tile

  const int64_t batch_head = blockIdx.y;
  const int64_t head = batch_head % p.heads;
  const int64_t query_start = int64_t(blockIdx.x) * kTile;
  const int rows = int(p.query_len - query_start < kTile ? p.query_len - query_start : kTile);
  const T slope = p.alibi_slopes ? T(p.alibi_slopes[head]) : T(0);
  const int tid = threadIdx.x;

  load_tile(query_tile, ldk, q + (batch_head * p.query_len + query_start) * Dk, rows, Dk, kTile);
  for (int index = tid; index < rows * Dv; index += kThreads) accumulator[index] = T(0);
  if (tid < kTile) {
    row_max[tid] = minus_infinity<T>();
    row_sum[tid] = T(0);
  }

  const int64_t key_end = visible_key_end(query_start, rows, p);
  for (int64_t key_start = 0; key_start < key_end; key_start += kTile) {
    const int cols = int(key_end - key_start < kTile ? key_end - key_start : kTile);
    const int64_t key_row = batch_head * p.key_len + key_start;
    __syncthreads();  // the previous tile's readers are done
    load_tile(key_tile, ldk, k + key_row * Dk, cols, Dk, cols);
    load_tile(value_tile, ldv, v + key_row * Dv, cols, Dv, cols);
    __syncthreads();

    for (int index = tid; index < rows * kTile; index += kThreads) {
      const int r = index / kTile, c = index % kTile;
      scores[r * lds + c] = c < cols ? masked_score(row_dot(query_tile + r * ldk, key_tile + c * ldk, Dk),
                                                    query_start + r, key_start + c, batch_head, slope, p)
                                     : minus_infinity<T>();
    }
    __syncthreads();

    if (tid < rows) {
      T* row = scores + tid * lds;
      T tile_max = minus_infinity<T>();
      for (int c = 0; c < cols; ++c) tile_max = row[c] > tile_max ? row[c] : tile_max;
      const T new_max = row_max[tid] > tile_max ? row_max[tid] : tile_max;
      if (new_max == minus_infinity<T>()) {  // nothing visible yet: e^(−inf − (−inf)) would be NaN
        for (int c = 0; c < cols; ++c) row[c] = T(0);
        row_correction[tid] = T(1);
      } else {
        const T correction = exponential(row_max[tid] - new_max);
        T tile_sum = T(0);
        for (int c = 0; c < cols; ++c) {
          row[c] = exponential(row[c] - new_max);
          tile_sum += row[c];
        }
        row_sum[tid] = row_sum[tid] * correction + tile_sum;
        row_max[tid] = new_max;
        row_correction[tid] = correction;
      }
    }
    __syncthreads();
    if (p.dropout.p > 0.0) {  // the same for the whole block
      for (int index = tid; index < rows * cols; index += kThreads) {
        const int r = index / cols, c = index - r * cols;
        scores[r * lds + c] *= dropout_factor(batch_head, query_start + r, key_start + c, p);
      }
      __syncthreads();
    }

    for (int index = tid; index < rows * Dv; index += kThreads) {
      const int r = index / Dv, d = index - r * Dv;
      const T* probabilities = scores + r * lds;
      T sum = accumulator[index] * row_correction[r];
      for (int c = 0; c < cols; ++c) sum += probabilities[c] * value_tile[c * ldv + d];
      accumulator[index] = sum;
    }
  }
  __syncthreads();

  // l = 0 exactly for a row that saw no key (a visible key adds e^0 = 1); NaN scores make l NaN, and
  // the row's output and lse NaN.
  T* out_tile = out + (batch_head * p.query_len + query_start) * Dv;
  for (int index = tid; index < rows * Dv; index += kThreads) {
    const T sum = row_sum[index / Dv];
    out_tile[index] = sum != T(0) ? accumulator[index] / sum : T(0);
  }
  if (tid < rows)
    lse[batch_head * p.query_len + query_start + tid] =
        row_sum[tid] != T(0) ? row_max[tid] + logarithm(row_sum[tid]) : minus_infinity<T>();
}

// δ_i = Σ_d dO_id · O_id, one warp per row, summed in double.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    attention_delta_kernel(T* delta, const T* dout, const T* out, int64_t rows, int Dv) {
  const int64_t row = int64_t(blockIdx.x) * (kThreads / kWarpSize) + threadIdx.x / kWarpSize;
  const int lane = int(threadIdx.x % kWarpSize);
  if (row >= rows) return;  // the whole warp leaves together
  double sum = 0.0;
  for (int d = lane; d < Dv; d += kWarpSize) sum += double(dout[row * Dv + d]) * double(out[row * Dv + d]);
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  if (lane == 0) delta[row] = T(sum);
}

// The shared tiles of one (query tile, key tile) pair in the backward.
template <typename T>
struct BackwardTiles {
  const T* query;          // (Bt, Dk + 1)
  const T* key;            // (Bt, Dk + 1)
  const T* value;          // (Bt, Dv + 1)
  const T* dout;           // (Bt, Dv + 1)
  const T* row_lse;        // (Bt): −inf for rows past Tq or that see no key
  const T* row_delta;      // (Bt)
  T* probabilities;        // (Bt, Bt + 1): P (P̃ with dropout)
  T* score_grads;          // (Bt, Bt + 1): dS
};

// Recomputes P (P̃ with dropout) and dS = scale · P ⊙ (dP − δ), dP = dO·Vᵀ (times M/(1 − p) with
// dropout), of one tile pair; zeros where masked or out of range. With a score bias, dS is scale times
// P ⊙ (dP − δ), which `sum_bias_grad` (the dQ launch) also adds to the bias gradient.
template <typename T, int kTile>
__device__ __forceinline__ void probabilities_and_score_grads(const BackwardTiles<T>& tiles, int64_t query_start,
                                                              int rows, int64_t key_start, int cols,
                                                              int64_t batch_head, T slope, const TileParams<T>& p,
                                                              bool sum_bias_grad) {
  const int Dk = p.qk_dim, Dv = p.value_dim;
  const int ldk = Dk + 1, ldv = Dv + 1, lds = kTile + 1;
  for (int index = threadIdx.x; index < kTile * kTile; index += kThreads) {
    const int r = index / kTile, c = index % kTile;
    T probability = T(0), score_grad = T(0);
    if (r < rows && c < cols && tiles.row_lse[r] != minus_infinity<T>()) {
      const T score = masked_score(row_dot(tiles.query + r * ldk, tiles.key + c * ldk, Dk), query_start + r,
                                   key_start + c, batch_head, slope, p);
      if (score != minus_infinity<T>()) {
        probability = exponential(score - tiles.row_lse[r]);
        const T dp = row_dot(tiles.dout + r * ldv, tiles.value + c * ldv, Dv);
        if (p.score_bias) {
          const T drop = p.dropout.p > 0.0 ? dropout_factor(batch_head, query_start + r, key_start + c, p) : T(1);
          const T grad = probability * ((p.dropout.p > 0.0 ? dp * drop : dp) - tiles.row_delta[r]);
          if (sum_bias_grad && p.bias_grad)
            p.bias_grad[bias_offset(batch_head, query_start + r, key_start + c, true, p)] += grad;
          score_grad = p.scale * grad;
          probability *= drop;
        } else if (p.dropout.p > 0.0) {
          const T drop = dropout_factor(batch_head, query_start + r, key_start + c, p);
          score_grad = p.scale * probability * (dp * drop - tiles.row_delta[r]);
          probability *= drop;
        } else {
          score_grad = p.scale * probability * (dp - tiles.row_delta[r]);
        }
      }
    }
    tiles.probabilities[r * lds + c] = probability;
    tiles.score_grads[r * lds + c] = score_grad;
  }
}

// Shared memory of each backward kernel, in elements of T.
template <int kTile>
size_t backward_shared_elements(int Dk, int Dv) {
  return size_t(kTile) * (2 * (Dk + 1) + 2 * (Dv + 1) + (Dk + Dv) + 2 * (kTile + 1) + 2);
}

// Carves the backward's shared memory: the four input tiles, the score tiles and the row terms;
// returns the gradient accumulators' space (at most Bt · (Dk + Dv) elements).
template <typename T, int kTile>
__device__ __forceinline__ T* carve_backward_tiles(T* shared, int Dk, int Dv, T*& query_tile, T*& key_tile,
                                                   T*& value_tile, T*& dout_tile, T*& probabilities,
                                                   T*& score_grads, T*& row_lse, T*& row_delta) {
  const int ldk = Dk + 1, ldv = Dv + 1, lds = kTile + 1;
  query_tile = shared;
  key_tile = query_tile + kTile * ldk;
  value_tile = key_tile + kTile * ldk;
  dout_tile = value_tile + kTile * ldv;
  probabilities = dout_tile + kTile * ldv;
  score_grads = probabilities + kTile * lds;
  row_lse = score_grads + kTile * lds;
  row_delta = row_lse + kTile;
  return row_delta + kTile;
}

// Loads one query tile's rows of Q, dO, lse and δ (rows past Tq get lse = −inf: P = 0).
template <typename T, int kTile>
__device__ __forceinline__ void load_query_side(T* query_tile, T* dout_tile, T* row_lse, T* row_delta, const T* q,
                                                const T* dout, const T* lse, const T* delta, int64_t query_row,
                                                int rows, const TileParams<T>& p) {
  load_tile(query_tile, p.qk_dim + 1, q + query_row * p.qk_dim, rows, p.qk_dim, rows);
  load_tile(dout_tile, p.value_dim + 1, dout + query_row * p.value_dim, rows, p.value_dim, rows);
  if (int(threadIdx.x) < kTile) {
    const int r = threadIdx.x;
    row_lse[r] = r < rows ? lse[query_row + r] : minus_infinity<T>();
    row_delta[r] = r < rows ? delta[query_row + r] : T(0);
  }
}

// One block per (key tile, batch·head): dK and dV summed over the query tiles in order.
template <typename T, int kTile>
__global__ void __launch_bounds__(kThreads)
    attention_key_grads_kernel(T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v, const T* lse,
                               const T* delta, TileParams<T> p) {
  ENGINE_DYNAMIC_SHARED(T, shared);
  const int Dk = p.qk_dim, Dv = p.value_dim;
  const int ldk = Dk + 1, ldv = Dv + 1, lds = kTile + 1;
  T *query_tile, *key_tile, *value_tile, *dout_tile, *probabilities, *score_grads, *row_lse, *row_delta;
  T* key_grad = carve_backward_tiles<T, kTile>(shared, Dk, Dv, query_tile, key_tile, value_tile, dout_tile,
                                               probabilities, score_grads, row_lse, row_delta);  // (Bt, Dk)
  T* value_grad = key_grad + kTile * Dk;                                                       // (Bt, Dv)
  const BackwardTiles<T> tiles{query_tile, key_tile, value_tile, dout_tile, row_lse, row_delta, probabilities,
                               score_grads};

  const int64_t batch_head = blockIdx.y;
  const int64_t head = batch_head % p.heads;
  const int64_t key_start = int64_t(blockIdx.x) * kTile;
  const int cols = int(p.key_len - key_start < kTile ? p.key_len - key_start : kTile);
  const T slope = p.alibi_slopes ? T(p.alibi_slopes[head]) : T(0);
  const int tid = threadIdx.x;
  const int64_t key_row = batch_head * p.key_len + key_start;

  load_tile(key_tile, ldk, k + key_row * Dk, cols, Dk, cols);
  load_tile(value_tile, ldv, v + key_row * Dv, cols, Dv, cols);
  for (int index = tid; index < cols * Dk; index += kThreads) key_grad[index] = T(0);
  for (int index = tid; index < cols * Dv; index += kThreads) value_grad[index] = T(0);

  const int64_t first_query_tile = first_query_seeing(key_start, p) / kTile;
  for (int64_t query_start = first_query_tile * kTile; query_start < p.query_len; query_start += kTile) {
    const int rows = int(p.query_len - query_start < kTile ? p.query_len - query_start : kTile);
    __syncthreads();  // the previous tile's readers are done
    load_query_side<T, kTile>(query_tile, dout_tile, row_lse, row_delta, q, dout, lse, delta,
                              batch_head * p.query_len + query_start, rows, p);
    __syncthreads();
    probabilities_and_score_grads<T, kTile>(tiles, query_start, rows, key_start, cols, batch_head, slope, p, false);
    __syncthreads();
    for (int index = tid; index < cols * Dv; index += kThreads) {
      const int c = index / Dv, d = index - c * Dv;
      T sum = value_grad[index];
      for (int r = 0; r < rows; ++r) sum += probabilities[r * lds + c] * dout_tile[r * ldv + d];
      value_grad[index] = sum;
    }
    for (int index = tid; index < cols * Dk; index += kThreads) {
      const int c = index / Dk, d = index - c * Dk;
      T sum = key_grad[index];
      for (int r = 0; r < rows; ++r) sum += score_grads[r * lds + c] * query_tile[r * ldk + d];
      key_grad[index] = sum;
    }
  }
  // Each accumulator element is read and written by the one thread that owns it: no barrier needed.
  for (int index = tid; index < cols * Dk; index += kThreads) dk[key_row * Dk + index] = key_grad[index];
  for (int index = tid; index < cols * Dv; index += kThreads) dv[key_row * Dv + index] = value_grad[index];
}

// One block per (query tile, block·head): dQ summed over the visible key tiles in order, for each
// sequence of the position block in turn (one sequence per block without a bias gradient, which the
// block sums into its rows of the bias gradient).
template <typename T, int kTile>
__global__ void __launch_bounds__(kThreads)
    attention_query_grads_kernel(T* dq, const T* dout, const T* q, const T* k, const T* v, const T* lse,
                                 const T* delta, TileParams<T> p) {
  ENGINE_DYNAMIC_SHARED(T, shared);
  const int Dk = p.qk_dim, Dv = p.value_dim;
  const int ldk = Dk + 1, ldv = Dv + 1, lds = kTile + 1;
  T *query_tile, *key_tile, *value_tile, *dout_tile, *probabilities, *score_grads, *row_lse, *row_delta;
  T* query_grad = carve_backward_tiles<T, kTile>(shared, Dk, Dv, query_tile, key_tile, value_tile, dout_tile,
                                                 probabilities, score_grads, row_lse, row_delta);  // (Bt, Dk)
  const BackwardTiles<T> tiles{query_tile, key_tile, value_tile, dout_tile, row_lse, row_delta, probabilities,
                               score_grads};

  const int64_t block_head = blockIdx.y;
  const int64_t head = block_head % p.heads;
  const int64_t query_start = int64_t(blockIdx.x) * kTile;
  const int rows = int(p.query_len - query_start < kTile ? p.query_len - query_start : kTile);
  const T slope = p.alibi_slopes ? T(p.alibi_slopes[head]) : T(0);
  const int tid = threadIdx.x;
  const int64_t key_end = visible_key_end(query_start, rows, p);

  for (int64_t batch = block_head / p.heads; batch < p.batch; batch += p.blocks) {
    const int64_t batch_head = batch * p.heads + head;
    const int64_t query_row = batch_head * p.query_len + query_start;
    __syncthreads();  // the previous sequence's readers are done
    load_query_side<T, kTile>(query_tile, dout_tile, row_lse, row_delta, q, dout, lse, delta, query_row, rows, p);
    for (int index = tid; index < rows * Dk; index += kThreads) query_grad[index] = T(0);

    for (int64_t key_start = 0; key_start < key_end; key_start += kTile) {
      const int cols = int(key_end - key_start < kTile ? key_end - key_start : kTile);
      const int64_t key_row = batch_head * p.key_len + key_start;
      __syncthreads();  // the previous tile's readers are done
      load_tile(key_tile, ldk, k + key_row * Dk, cols, Dk, cols);
      load_tile(value_tile, ldv, v + key_row * Dv, cols, Dv, cols);
      __syncthreads();
      probabilities_and_score_grads<T, kTile>(tiles, query_start, rows, key_start, cols, batch_head, slope, p, true);
      __syncthreads();
      for (int index = tid; index < rows * Dk; index += kThreads) {
        const int r = index / Dk, d = index - r * Dk;
        T sum = query_grad[index];
        for (int c = 0; c < cols; ++c) sum += score_grads[r * lds + c] * key_tile[c * ldk + d];
        query_grad[index] = sum;
      }
    }
    for (int index = tid; index < rows * Dk; index += kThreads) dq[query_row * Dk + index] = query_grad[index];
  }
}

int64_t tile_count(int64_t length, int tile) { return (length + tile - 1) / tile; }

// Lets `kernel` use `bytes` of dynamic shared memory (beyond the default 48 KiB it must ask).
template <typename Kernel>
void allow_shared_bytes(Kernel* kernel, size_t bytes) {
  if (bytes > kDefaultSharedBytes)
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

// The largest tile (kLargest, then halves down to 8) whose shared memory fits; 0 if none does.
template <typename T, int kLargest>
int choose_tile(size_t (*elements)(int, int), size_t (*half_elements)(int, int),
                size_t (*quarter_elements)(int, int), int Dk, int Dv) {
  if (elements(Dk, Dv) * sizeof(T) <= kSharedLimitBytes) return kLargest;
  if (half_elements(Dk, Dv) * sizeof(T) <= kSharedLimitBytes) return kLargest / 2;
  if (quarter_elements(Dk, Dv) * sizeof(T) <= kSharedLimitBytes) return kLargest / 4;
  return 0;
}

template <typename T>
constexpr int kLargestTile = sizeof(T) == 4 ? 32 : 16;

void check_tile(int tile, const AttentionSizes& sizes) {
  ENGINE_CHECK(tile > 0, "attention: head sizes Dk = ", sizes.qk_dim, ", Dv = ", sizes.value_dim,
               " need more shared memory than the CUDA kernel can use (", kSharedLimitBytes,
               " bytes); use smaller heads");
}

template <typename T, int kTile>
void launch_forward(T* out, T* lse, const T* q, const T* k, const T* v, const AttentionSizes& sizes,
                    const TileParams<T>& params, cudaStream_t stream) {
  const size_t bytes = forward_shared_elements<kTile>(params.qk_dim, params.value_dim) * sizeof(T);
  auto* kernel = attention_forward_kernel<T, kTile>;
  allow_shared_bytes(kernel, bytes);
  const dim3 grid(unsigned(tile_count(sizes.query_len, kTile)), unsigned(sizes.batch * sizes.heads));
  ENGINE_LAUNCH(kernel, grid, kThreads, bytes, stream, out, lse, q, k, v, params);
}

template <typename T, int kTile>
void launch_backward(T* dq, T* dk, T* dv, const T* delta, const T* dout, const T* q, const T* k, const T* v,
                     const T* lse, const AttentionSizes& sizes, const TileParams<T>& params, cudaStream_t stream) {
  const size_t bytes = backward_shared_elements<kTile>(params.qk_dim, params.value_dim) * sizeof(T);
  const unsigned batch_heads = unsigned(sizes.batch * sizes.heads);
  if (sizes.key_len > 0) {
    auto* key_kernel = attention_key_grads_kernel<T, kTile>;
    allow_shared_bytes(key_kernel, bytes);
    ENGINE_LAUNCH(key_kernel, dim3(unsigned(tile_count(sizes.key_len, kTile)), batch_heads), kThreads, bytes,
                  stream, dk, dv, dout, q, k, v, lse, delta, params);
  }
  if (sizes.query_len > 0) {
    auto* query_kernel = attention_query_grads_kernel<T, kTile>;
    allow_shared_bytes(query_kernel, bytes);
    const unsigned block_heads = unsigned(params.blocks * sizes.heads);
    ENGINE_LAUNCH(query_kernel, dim3(unsigned(tile_count(sizes.query_len, kTile)), block_heads), kThreads, bytes,
                  stream, dq, dout, q, k, v, lse, delta, params);
  }
}

void check_grid(const AttentionSizes& sizes) {
  ENGINE_CHECK(sizes.batch * sizes.heads <= 65535, "attention: B·H = ", sizes.batch * sizes.heads,
               " exceeds the CUDA kernel's grid limit of 65535 (batch · heads)");
}

}  // namespace

template <typename T>
void attention_forward(T* out, T* lse, const T* q, const T* k, const T* v, const AttentionSizes& sizes,
                       const AttentionBias& bias, cudaStream_t stream) {
  if (sizes.batch * sizes.heads * sizes.query_len == 0) return;
  check_grid(sizes);
  const TileParams<T> params = tile_params<T>(sizes, bias);
  constexpr int kLargest = kLargestTile<T>;
  const int tile = choose_tile<T, kLargest>(forward_shared_elements<kLargest>, forward_shared_elements<kLargest / 2>,
                                            forward_shared_elements<kLargest / 4>, params.qk_dim, params.value_dim);
  check_tile(tile, sizes);
  if (tile == kLargest)
    launch_forward<T, kLargest>(out, lse, q, k, v, sizes, params, stream);
  else if (tile == kLargest / 2)
    launch_forward<T, kLargest / 2>(out, lse, q, k, v, sizes, params, stream);
  else
    launch_forward<T, kLargest / 4>(out, lse, q, k, v, sizes, params, stream);
}

template <typename T>
void attention_backward(T* dq, T* dk, T* dv, T* delta, const T* dout, const T* q, const T* k, const T* v,
                        const T* out, const T* lse, const AttentionSizes& sizes, const AttentionBias& bias,
                        cudaStream_t stream) {
  const int64_t query_rows = sizes.batch * sizes.heads * sizes.query_len;
  if (sizes.batch * sizes.heads == 0) return;
  check_grid(sizes);
  if (query_rows > 0) {
    constexpr int64_t kRowsPerBlock = kThreads / kWarpSize;
    auto* delta_kernel = attention_delta_kernel<T>;
    ENGINE_LAUNCH(delta_kernel, unsigned((query_rows + kRowsPerBlock - 1) / kRowsPerBlock), kThreads, 0, stream,
                  delta, dout, out, query_rows, int(sizes.value_dim));
  }
  const TileParams<T> params = tile_params<T>(sizes, bias);
  constexpr int kLargest = kLargestTile<T>;
  const int tile = choose_tile<T, kLargest>(backward_shared_elements<kLargest>,
                                            backward_shared_elements<kLargest / 2>,
                                            backward_shared_elements<kLargest / 4>, params.qk_dim, params.value_dim);
  check_tile(tile, sizes);
  if (tile == kLargest)
    launch_backward<T, kLargest>(dq, dk, dv, delta, dout, q, k, v, lse, sizes, params, stream);
  else if (tile == kLargest / 2)
    launch_backward<T, kLargest / 2>(dq, dk, dv, delta, dout, q, k, v, lse, sizes, params, stream);
  else
    launch_backward<T, kLargest / 4>(dq, dk, dv, delta, dout, q, k, v, lse, sizes, params, stream);
}

template void attention_forward<float>(float*, float*, const float*, const float*, const float*,
                                       const AttentionSizes&, const AttentionBias&, cudaStream_t);
template void attention_forward<double>(double*, double*, const double*, const double*, const double*,
                                        const AttentionSizes&, const AttentionBias&, cudaStream_t);
template void attention_backward<float>(float*, float*, float*, float*, const float*, const float*, const float*,
                                        const float*, const float*, const float*, const AttentionSizes&,
                                        const AttentionBias&, cudaStream_t);
template void attention_backward<double>(double*, double*, double*, double*, const double*, const double*,
                                         const double*, const double*, const double*, const double*,
                                         const AttentionSizes&, const AttentionBias&, cudaStream_t);

}  // namespace ops::cuda
