// The MLP's hidden-gradient GEMM on CUDA (see ops/cuda/mlp.h): cuBLASLt's DGELU epilogue, or the
// plain GEMM and linear's gelu_backward kernel where cuBLASLt has no fused algorithm (and in f64).
// Plain CUDA C++: built by nvcc into `ops_cuda` and by g++ under the kernel emulator.
//
// Legend: R = rows, F = hidden features, O = output features.
#include "ops/cuda/mlp.h"

#include "ops/cuda/gemm.h"
#include "ops/cuda/matmul.h"

namespace ops::cuda {

template <typename T>
void mlp_pre_activation_gradient(T* grad_pre, const T* grad_y, const T* proj_weight, const T* pre, int64_t R,
                                 int64_t F, int64_t O, bool bf16_operands, cudaStream_t stream) {
  if (R == 0 || F == 0) return;
  // grad_pre = grad_y · proj_weight: op(A) = grad_y (R, O), op(B) = proj_weight (O, F); the epilogue
  // multiplies each sum by gelu'(pre) before it is stored. DGELU only reads pre.
  GemmFusion<T> fusion;
  fusion.epilogue = GemmEpilogue::gelu_backward;
  fusion.pre = const_cast<T*>(pre);
  if (gemm_fused<T>(fusion, false, false, R, F, O, T(1), grad_y, O, proj_weight, F, T(0), grad_pre, F, stream,
                    bf16_operands))
    return;
  gemm<T>(false, false, R, F, O, T(1), grad_y, O, proj_weight, F, T(0), grad_pre, F, stream, bf16_operands);
  gelu_backward<T>(grad_pre, grad_pre, pre, R * F, stream);  // elementwise, so in place is safe
}

#define INSTANTIATE(T)                                                                                          \
  template void mlp_pre_activation_gradient<T>(T*, const T*, const T*, const T*, int64_t, int64_t, int64_t, bool, \
                                               cudaStream_t);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace ops::cuda
