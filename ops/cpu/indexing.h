// CPU kernels for joining, splitting and indexing along one dimension.
//
// Every tensor is seen as (outer, D, inner): the dims before the indexed one folded into `outer`,
// those after it into `inner`. J = number of indices along the dim. Gradients are written (=);
// scatter-adds visit indices in order, so the sums are deterministic without atomics.
#pragma once

#include <cstdint>

namespace ops::cpu {

// Copies `rows` rows of `width` elements: dst row r starts at r · dst_stride, src row r at
// r · src_stride. Concatenation is one call per piece.
template <typename T>
void copy_rows(T* dst, int64_t dst_stride, const T* src, int64_t src_stride, int64_t rows, int64_t width);

// out: (outer, J, inner) = x: (outer, D, inner) at index: (J) along the middle dim.
template <typename T, typename I>
void index_select_forward(T* out, const T* x, const I* index, int64_t outer, int64_t D, int64_t J, int64_t inner);

// grad_x: (outer, D, inner) = Σ_j grad_out[:, j, :] added at index[j].
template <typename T, typename I>
void index_select_backward(T* grad_x, const T* grad_out, const I* index, int64_t outer, int64_t D, int64_t J,
                           int64_t inner);

// out: (outer, J, inner)[o, j, k] = x: (outer, D, inner)[o, index[o, j, k], k].
template <typename T, typename I>
void gather_forward(T* out, const T* x, const I* index, int64_t outer, int64_t D, int64_t J, int64_t inner);

// grad_x: (outer, D, inner) with grad_out[o, j, k] added at [o, index[o, j, k], k].
template <typename T, typename I>
void gather_backward(T* grad_x, const T* grad_out, const I* index, int64_t outer, int64_t D, int64_t J,
                     int64_t inner);

}  // namespace ops::cpu
