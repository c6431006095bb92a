// CPU kernels for table lookup.
//
// Legend: N = number of indices (all index dims folded), V = table rows (vocabulary), C = channels.
// Gradient convention: grad_table is written (=) with the sum over all lookups; the autograd engine
// accumulates it into the parameter.
#pragma once

#include <cstdint>

namespace ops::cpu {

// Index of the first entry of indices: (N) outside [0, V), or -1 when all are valid.
template <typename I>
int64_t first_out_of_range(const I* indices, int64_t N, int64_t V);

// out: (N, C) = table: (V, C) rows at indices: (N), all in [0, V).
template <typename T, typename I>
void embedding_forward(T* out, const T* table, const I* indices, int64_t N, int64_t C);

// grad_table: (V, C) = Σ over n with indices[n] = v of grad_out[n]: (N, C). Threads own column
// blocks and add rows in index order, so the result is deterministic without atomics.
template <typename T, typename I>
void embedding_backward(T* grad_table, const T* grad_out, const I* indices, int64_t N, int64_t V, int64_t C);

}  // namespace ops::cpu
