// CUDA kernels for joining and indexing along one dimension: the same contracts as
// ops/cpu/indexing.h.
//
// Every tensor is seen as (outer, D, inner): the dims before the indexed one folded into `outer`,
// those after it into `inner`. J = number of indices along the dim. Gradients are written (=). The
// scatter-adds of the backwards give each thread one (outer, inner) column of the gradient and add
// the indices in order, so the sums are deterministic without atomics and equal the CPU's. All
// pointers are device pointers.
#pragma once

#include <cstdint>

#include "engine/cuda/cuda_api.h"

namespace ops::cuda {

// Copies `rows` rows of `width` elements: dst row r starts at r · dst_stride, src row r at
// r · src_stride. Concatenation is one call per piece.
template <typename T>
void copy_rows(T* dst, int64_t dst_stride, const T* src, int64_t src_stride, int64_t rows, int64_t width,
               cudaStream_t stream);

// summary: (2) = {position of the first entry of index: (n) outside [0, size), or -1; its value
// (0 when none)}, for the host's error message.
template <typename I>
void find_out_of_range(int64_t* summary, const I* index, int64_t n, int64_t size, cudaStream_t stream);

// out: (outer, J, inner) = x: (outer, D, inner) at index: (J) along the middle dim.
template <typename T, typename I>
void index_select_forward(T* out, const T* x, const I* index, int64_t outer, int64_t D, int64_t J, int64_t inner,
                          cudaStream_t stream);

// grad_x: (outer, D, inner) = Σ_j grad_out: (outer, J, inner)[:, j, :] added at index[j].
template <typename T, typename I>
void index_select_backward(T* grad_x, const T* grad_out, const I* index, int64_t outer, int64_t D, int64_t J,
                           int64_t inner, cudaStream_t stream);

// out: (outer, J, inner)[o, j, k] = x: (outer, D, inner)[o, index[o, j, k], k].
template <typename T, typename I>
void gather_forward(T* out, const T* x, const I* index, int64_t outer, int64_t D, int64_t J, int64_t inner,
                    cudaStream_t stream);

// grad_x: (outer, D, inner) with grad_out: (outer, J, inner)[o, j, k] added at [o, index[o, j, k], k].
template <typename T, typename I>
void gather_backward(T* grad_x, const T* grad_out, const I* index, int64_t outer, int64_t D, int64_t J,
                     int64_t inner, cudaStream_t stream);

}  // namespace ops::cuda
