// CPU reduction kernels over an (O, R, I) view; see ops/cpu/reduce.h.
//
// Work is cut into tasks of (outer index, chunk of R, block of I columns). Each output element's
// sum is taken in double over its chunks in increasing r, then the chunks are added in order. How
// R is chunked depends on the shape only, never on the thread count, so results are reproducible.
#include "ops/cpu/reduce.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/strided_loop.h"

namespace ops::cpu {

namespace {

constexpr int64_t kParallelThreshold = int64_t(1) << 15;  // elements below which one thread is faster
constexpr int64_t kColumnBlock = 256;                     // inner columns one task accumulates at once
constexpr int64_t kMinTasks = 16;                         // fewer (O, block) tasks than this: chunk R
constexpr int64_t kChunkElements = int64_t(1) << 14;      // smallest chunk worth a task

// Σ x[0..n) in double with 8 independent lanes combined in a fixed order: the loop vectorises and
// the result depends on n alone.
template <typename T>
double sum_contiguous(const T* x, int64_t n) {
  double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) lanes[k] += double(x[i + k]);
  double tail = 0.0;
  for (; i < n; ++i) tail += double(x[i]);
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7])) + tail;
}

// acc[j] = Σ_r x[r * inner + j] for r < rows, j < width: column sums of a (rows, width) slab whose
// rows are `inner` apart.
template <typename T>
void sum_columns(double* acc, const T* x, int64_t inner, int64_t rows, int64_t width) {
  std::fill(acc, acc + width, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = x + r * inner;
    for (int64_t j = 0; j < width; ++j) acc[j] += double(row[j]);
  }
}

// Updates the running maximum with v at position r; the first maximum wins, NaN beats everything.
template <typename T>
inline void update_max(T& best, int64_t& best_index, T v, int64_t r) {
  if (v > best || (std::isnan(v) && !std::isnan(best))) {
    best = v;
    best_index = r;
  }
}

}  // namespace

template <typename T>
void sum_forward(T* out, const T* x, int64_t outer, int64_t reduce, int64_t inner, double divisor) {
  if (outer == 0 || inner == 0) return;
  const int64_t width = std::min(inner, kColumnBlock);
  const int64_t blocks = (inner + width - 1) / width;
  // Too few (outer, block) tasks to keep the threads busy: split R as well.
  int64_t chunks = 1;
  if (outer * blocks < kMinTasks) chunks = std::clamp<int64_t>(reduce * width / kChunkElements, 1, kMinTasks);
  const int64_t rows_per_chunk = std::max<int64_t>(1, (reduce + chunks - 1) / chunks);
  chunks = std::max<int64_t>(1, (reduce + rows_per_chunk - 1) / rows_per_chunk);

  std::vector<double> partials(chunks > 1 ? size_t(outer * chunks * inner) : 0);
  const int64_t tasks = outer * chunks * blocks;
#pragma omp parallel for schedule(static) if (outer * reduce * inner > kParallelThreshold)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t block = t % blocks, chunk = (t / blocks) % chunks, o = t / (blocks * chunks);
    const int64_t i0 = block * width, w = std::min(width, inner - i0);
    const int64_t r0 = chunk * rows_per_chunk, rows = std::max<int64_t>(0, std::min(rows_per_chunk, reduce - r0));
    const T* slab = x + (o * reduce + r0) * inner + i0;
    double acc[kColumnBlock];
    if (inner == 1)
      acc[0] = sum_contiguous(slab, rows);
    else
      sum_columns(acc, slab, inner, rows, w);
    if (chunks == 1) {
      for (int64_t j = 0; j < w; ++j) out[o * inner + i0 + j] = static_cast<T>(acc[j] / divisor);
    } else {
      double* partial = partials.data() + (o * chunks + chunk) * inner + i0;
      std::copy(acc, acc + w, partial);
    }
  }
  if (chunks == 1) return;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      double total = 0.0;
      for (int64_t c = 0; c < chunks; ++c) total += partials[size_t((o * chunks + c) * inner + i)];
      out[o * inner + i] = static_cast<T>(total / divisor);
    }
}

template <typename T>
void sum_backward(T* grad_x, const T* grad_out, const Shape& shape, const Shape& grad_out_strides, double scale) {
  const T s = static_cast<T>(scale);
  engine::strided_loop<2>(shape, {engine::contiguous_strides(shape), grad_out_strides},
                          [&](const auto& offsets, int64_t n, const auto& strides) {
                            T* out = grad_x + offsets[0];
                            const T* g = grad_out + offsets[1];
                            if (strides[0] == 1 && strides[1] == 0) {
                              std::fill(out, out + n, g[0] * s);
                            } else {
                              for (int64_t i = 0; i < n; ++i) out[i * strides[0]] = g[i * strides[1]] * s;
                            }
                          });
}

template <typename T>
void max_forward(T* out, int64_t* argmax, const T* x, int64_t outer, int64_t reduce, int64_t inner) {
  if (outer == 0 || inner == 0) return;
  const int64_t width = std::min(inner, kColumnBlock);
  const int64_t blocks = (inner + width - 1) / width;
  const int64_t tasks = outer * blocks;
#pragma omp parallel for schedule(static) if (outer * reduce * inner > kParallelThreshold)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t o = t / blocks, i0 = (t % blocks) * width, w = std::min(width, inner - i0);
    const T* slab = x + o * reduce * inner + i0;
    T best[kColumnBlock];
    int64_t best_index[kColumnBlock];
    for (int64_t j = 0; j < w; ++j) {
      best[j] = slab[j];
      best_index[j] = 0;
    }
    for (int64_t r = 1; r < reduce; ++r)
      for (int64_t j = 0; j < w; ++j) update_max(best[j], best_index[j], slab[r * inner + j], r);
    std::copy(best, best + w, out + o * inner + i0);
    std::copy(best_index, best_index + w, argmax + o * inner + i0);
  }
}

template <typename T>
void max_backward(T* grad_x, const T* grad_out, const int64_t* argmax, int64_t outer, int64_t reduce,
                  int64_t inner) {
#pragma omp parallel for schedule(static) if (outer * reduce * inner > kParallelThreshold)
  for (int64_t o = 0; o < outer; ++o) {
    T* slab = grad_x + o * reduce * inner;
    std::fill(slab, slab + reduce * inner, T(0));
    for (int64_t i = 0; i < inner; ++i) slab[argmax[o * inner + i] * inner + i] = grad_out[o * inner + i];
  }
}

#define INSTANTIATE(T)                                                                                \
  template void sum_forward<T>(T*, const T*, int64_t, int64_t, int64_t, double);                     \
  template void sum_backward<T>(T*, const T*, const Shape&, const Shape&, double);                   \
  template void max_forward<T>(T*, int64_t*, const T*, int64_t, int64_t, int64_t);                   \
  template void max_backward<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t);
INSTANTIATE(float)
INSTANTIATE(double)

}  // namespace ops::cpu
