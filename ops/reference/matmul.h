// Kernel 0 of matmul: the readable version of the op (ops/matmul.h), a plain triple loop in double,
// the oracle the tests compare the fast kernels against (ops/cpu/gemm.h, ops/cuda/gemm.h). For each
// batch index (the leading dims, broadcast as NumPy does):
//   C[m, n] = Σ_k op(A)[m, k] · op(B)[k, n],   op(X) = Xᵀ when its transpose flag is set.
//
//   M, K, N = the product's dims: op(A) is (M, K), op(B) is (K, N), C is (M, N)
#pragma once

#include "engine/tensor.h"

namespace ops::reference {

using engine::Tensor;

// a: (..., M, K) or (..., K, M) with transpose_a, b: (..., K, N) or (..., N, K) with transpose_b,
// any floating dtype and device -> C: (broadcast batch..., M, N), f64 on the CPU.
Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a = false, bool transpose_b = false);

}  // namespace ops::reference
