// The CPU loop behind every elementwise kernel over strided (possibly broadcast, possibly
// non-contiguous) operands. Dimensions that are contiguous for all operands are merged first, so a
// contiguous tensor becomes a single flat loop; the innermost run is handed to the caller with its
// per-operand strides so that the common stride-1 case vectorises.
#pragma once

#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>

#include "engine/shape.h"

namespace engine {

template <size_t N>
struct StridedLayout {
  Shape shape;                      // merged dimensions
  std::array<Shape, N> strides;     // per operand, per merged dimension
};

// Merges dimension d into d+1 when every operand can walk both as one.
template <size_t N>
StridedLayout<N> merge_strided_dims(const Shape& shape, const std::array<Shape, N>& strides) {
  StridedLayout<N> out;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;  // size-1 dims contribute nothing
    bool merge = !out.shape.empty();
    for (size_t k = 0; k < N && merge; ++k)
      merge = out.strides[k].back() == strides[k][d] * shape[d];
    if (merge) {
      out.shape.back() *= shape[d];
      for (size_t k = 0; k < N; ++k) out.strides[k].back() = strides[k][d];
    } else {
      out.shape.push_back(shape[d]);
      for (size_t k = 0; k < N; ++k) out.strides[k].push_back(strides[k][d]);
    }
  }
  if (out.shape.empty()) {  // a scalar, or all dims of size 1
    out.shape.push_back(1);
    for (size_t k = 0; k < N; ++k) out.strides[k].push_back(0);
  }
  return out;
}

// Calls inner(offsets, count, inner_strides) for every innermost run; offsets are element offsets
// of the run's first element per operand. Runs are split across OpenMP threads when the work is
// large enough to pay for it; each run is visited exactly once, so writes never race as long as the
// output operand has no repeated (stride-0) elements.
template <size_t N, typename Inner>
void strided_loop(const Shape& shape, const std::array<Shape, N>& strides, Inner&& inner) {
  const StridedLayout<N> layout = merge_strided_dims<N>(shape, strides);
  const int64_t rank = int64_t(layout.shape.size());
  const int64_t inner_count = layout.shape[rank - 1];
  int64_t outer_count = 1;
  for (int64_t d = 0; d < rank - 1; ++d) outer_count *= layout.shape[d];
  std::array<int64_t, N> inner_strides;
  for (size_t k = 0; k < N; ++k) inner_strides[k] = layout.strides[k][rank - 1];

  auto run_range = [&](int64_t begin, int64_t end) {
    for (int64_t outer = begin; outer < end; ++outer) {
      std::array<int64_t, N> offsets{};
      int64_t rest = outer;
      for (int64_t d = rank - 2; d >= 0; --d) {
        int64_t index = rest % layout.shape[d];
        rest /= layout.shape[d];
        for (size_t k = 0; k < N; ++k) offsets[k] += index * layout.strides[k][d];
      }
      inner(offsets, inner_count, inner_strides);
    }
  };

  const int64_t total = outer_count * inner_count;
  if (total < (int64_t(1) << 15) || omp_get_level() > 0) {  // in any region: no nested team
    run_range(0, outer_count);
    return;
  }
#pragma omp parallel
  {
    const int threads = omp_get_num_threads(), t = omp_get_thread_num();
    if (outer_count == 1) {  // one long run: split it so that every thread works
      const int64_t chunk = (inner_count + threads - 1) / threads;
      const int64_t begin = std::min<int64_t>(inner_count, chunk * t);
      const int64_t end = std::min<int64_t>(inner_count, begin + chunk);
      std::array<int64_t, N> offsets;
      for (size_t k = 0; k < N; ++k) offsets[k] = begin * inner_strides[k];
      if (end > begin) inner(offsets, end - begin, inner_strides);
    } else {
      const int64_t chunk = (outer_count + threads - 1) / threads;
      const int64_t begin = std::min<int64_t>(outer_count, chunk * t);
      run_range(begin, std::min<int64_t>(outer_count, begin + chunk));
    }
  }
}

// Strides of `t_strides` (for a tensor of `t_shape`) broadcast to `out_shape`: missing leading
// dimensions and size-1 dimensions get stride 0.
inline Shape broadcast_strides(const Shape& t_shape, const Shape& t_strides, const Shape& out_shape) {
  Shape strides(out_shape.size(), 0);
  const size_t lead = out_shape.size() - t_shape.size();
  for (size_t d = 0; d < t_shape.size(); ++d)
    strides[lead + d] = t_shape[d] == 1 ? 0 : t_strides[d];
  return strides;
}

}  // namespace engine
