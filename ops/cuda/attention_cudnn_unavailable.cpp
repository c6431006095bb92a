// The cuDNN attention path (ops/cuda/attention_cudnn.h) where cuDNN is not available: under the
// kernel emulator, which has no cuDNN. The path reports itself disabled and takes no call, so
// attention runs the hand-written kernel (ops/cuda/attention.h) whichever backend is asked for.
#include "ops/cuda/attention_cudnn.h"

namespace ops {

cuda::CudnnAttentionStatus cuda::cudnn_attention_status() {
  CudnnAttentionStatus status;
  status.state = CudnnAttentionState::disabled;
  status.reason = "cuDNN not available: the kernel emulator has no cuDNN";
  return status;
}

bool cuda::cudnn_attention_supports(const AttentionSizes& sizes, const AttentionBias& bias) { return false; }

bool cuda::cudnn_attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                                   const AttentionSizes& sizes, const AttentionBias& bias, cudaStream_t stream) {
  return false;
}

bool cuda::cudnn_attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                                    const float* k, const float* v, const float* out, const float* lse,
                                    const AttentionSizes& sizes, const AttentionBias& bias, cudaStream_t stream) {
  return false;
}

}  // namespace ops
