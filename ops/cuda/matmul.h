// CUDA kernels behind linear (the GEMMs themselves go through cuBLAS, ops/cuda/gemm.h): the bias +
// GELU epilogue after the GEMM, its backward, and the bias gradient as a deterministic column sum.
//
// Legend: N = rows (all leading dims of x folded), O = output features.
// Kernels write their outputs (=); the autograd engine accumulates parameter gradients.
// All pointers are device pointers to contiguous row-major data.
#pragma once

#include <cstdint>

#include "engine/cuda/cuda_api.h"

namespace ops::cuda {

// y: (N, O) in place: y += bias (bias may be null), then, when gelu, pre = y and y = gelu(pre).
// pre: (N, O), may be null when !gelu. GELU is the tanh approximation (GPT-2's gelu_new).
template <typename T>
void linear_epilogue(T* y, T* pre, const T* bias, int64_t N, int64_t O, bool gelu, cudaStream_t stream);

// grad_pre: (n) = grad_y · gelu'(pre), elementwise.
template <typename T>
void gelu_backward(T* grad_pre, const T* grad_y, const T* pre, int64_t n, cudaStream_t stream);

// How many row chunks column_sums splits N rows into: its scratch `partials` holds
// column_sum_chunks(N) · O doubles.
int64_t column_sum_chunks(int64_t N);

// out: (O) = Σ over rows of g: (N, O). Two passes, each in a fixed order: every chunk of rows is
// summed in double in row order into partials (chunks, O), then the chunks are summed in chunk
// order. The result does not depend on the grid, and there are no atomics.
template <typename T>
void column_sums(T* out, double* partials, const T* g, int64_t N, int64_t O, cudaStream_t stream);

}  // namespace ops::cuda
