// CUDA kernels for table lookup.
//
// Legend: N = number of indices (all index dims folded), V = table rows (vocabulary), C = channels.
// Gradient convention: grad_table is written (=) with the sum over all lookups; the autograd engine
// accumulates it into the parameter. All pointers are device pointers to contiguous data.
#pragma once

#include <cstdint>

#include "engine/cuda/cuda_api.h"

namespace ops::cuda {

// result: (1) = index of the first entry of indices: (N) outside [0, V), or -1 when all are valid.
// One block scans the indices (the caller reads `result` back to report the error).
template <typename I>
void first_out_of_range(int64_t* result, const I* indices, int64_t N, int64_t V, cudaStream_t stream);

// out: (N, C) = table: (V, C) rows at indices: (N), all in [0, V).
template <typename T, typename I>
void embedding_forward(T* out, const T* table, const I* indices, int64_t N, int64_t C, cudaStream_t stream);

// grad_table: (V, C) = Σ over n with indices[n] = v of grad_out[n]: (N, C), deterministic without
// atomics: the table rows are split into buckets (v mod 64) and each thread owns one column of one
// bucket, scanning all N indices in order and adding the rows of its bucket. Every table entry thus
// has one writer and receives its terms in index order, as on the CPU (the same bits).
// Work: zeroing V·C, N·C adds, and N index reads per (bucket, column block); for N = 16k, C = 768,
// V = 50k that is 384 blocks of 128 threads each scanning 16k cached indices, about the cost of a
// small GEMM, with no sort and no scratch memory.
template <typename T, typename I>
void embedding_backward(T* grad_table, const T* grad_out, const I* indices, int64_t N, int64_t V, int64_t C,
                        cudaStream_t stream);

}  // namespace ops::cuda
