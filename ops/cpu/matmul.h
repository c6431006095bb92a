// CPU kernels behind matmul and linear: a batched GEMM loop and the linear layer's epilogues.
//
// Legend: N = rows (all leading dims of x folded), O = output features, M/K = matrix dims.
// Kernels write their outputs (=); the autograd engine accumulates parameter gradients.
#pragma once

#include <cstdint>

namespace ops::cpu {

// C[i] = op(A + a_offsets[i]) · op(B + b_offsets[i]) for i < batch; C[i]: (M, N) contiguous, one
// after another. Many small products run in parallel over the batch, each on one thread; large ones
// run one after another, each threaded by the GEMM. bf16 (f32 only): on gemm_bf16 (gemm.h).
template <typename T>
void batched_gemm(int64_t batch, const int64_t* a_offsets, const int64_t* b_offsets, bool trans_a, bool trans_b,
                  int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb, T* C,
                  bool bf16 = false);

// A block of y, `rows` x `cols` with rows `ld` apart, in place: y += bias (bias may be null; bias[c]
// for column c), then, when gelu, pre = y and y = gelu(pre) (pre laid out as y; null when !gelu).
// GELU is the tanh approximation (GPT-2's gelu_new). On the calling thread: linear runs it as the
// GEMM's epilogue (gemm.h), on each block of y as soon as it is computed.
template <typename T>
void linear_epilogue(T* y, T* pre, const T* bias, int64_t rows, int64_t cols, int64_t ld, bool gelu);

// grad_pre: (N, O) = grad_y · gelu'(pre), elementwise.
template <typename T>
void gelu_backward(T* grad_pre, const T* grad_y, const T* pre, int64_t n);

// out: (O) = Σ over rows of g: (N, O), accumulated in double in row order, so the result does not
// depend on the thread count (threads split the columns).
template <typename T>
void column_sums(T* out, const T* g, int64_t N, int64_t O);

}  // namespace ops::cpu
