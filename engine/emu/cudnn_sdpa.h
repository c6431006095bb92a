// The graphs behind the emulated cuDNN backend (engine/emu/cudnn_api.h): the operations of a
// finalised operation graph as plain values, the recognition of the fused flash-attention (SDPA)
// graphs that cuDNN 9's runtime-fusion engines accept, and a host evaluation of a graph node by node.
//
// Recognition follows the composite lowering of cudnn-frontend for cuDNN 9.x (docs/cuda.md, "cuDNN
// fast path", lists it node by node): the operations' kinds and modes in order, the optional ALiBi
// and causal-mask subgraphs, and the tensors the fused kernels need to be real buffers (Q, K, V, O,
// Stats; in the backward also dO, dQ, dK, dV and the f32 row sums of dO ⊙ O). It checks the pattern
// and the operand layouts (rows contiguous, 16-bit IO types, f32 statistics, head size a multiple of
// 8 up to 256); the evaluation then computes whatever the graph says, so a graph that matches the
// pattern but wires it wrongly computes a wrong answer that the tests see.
//
//   B = batch, H = heads, Tq / Tk = query / key lengths, D = head size
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/emu/cudnn_api.h"

namespace engine::emu::detail {

// A tensor descriptor as finalised.
struct TensorDesc {
  int64_t uid = 0;
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  std::vector<int64_t> dims, strides;
  int64_t alignment = 0;  // bytes
  bool is_virtual = false;
  bool by_value = false;  // a host scalar given at execution
};

enum class OperationKind { pointwise, reduction, matmul, reshape };

// One operation of a graph. pointwise: y = mode(x [, b [, t]]); reduction: y = reduce(x) over the
// axes where y has size 1; matmul: y = x·b batched over the leading axes; reshape: y = x seen with
// y's dims and strides (the same elements in memory).
struct Operation {
  OperationKind kind = OperationKind::pointwise;
  cudnnPointwiseMode_t mode = CUDNN_POINTWISE_IDENTITY;
  int64_t axis = -1;  // GEN_INDEX
  cudnnReduceTensorOp_t reduce = CUDNN_REDUCE_TENSOR_ADD;
  TensorDesc x, b, t, y;
  bool has_b = false, has_t = false;
};

enum class SdpaDirection { forward, backward };

// Whether `operations` (in the order given) form an SDPA graph cuDNN 9 fuses; on success sets
// `direction` and returns "", else returns why not (naming the operation or tensor at fault).
std::string recognise_sdpa(const std::vector<Operation>& operations, SdpaDirection& direction);

// Evaluates `operations` on the host: non-virtual tensors are read from and written to
// `pointers` (uid → device pointer; host pointer for by-value scalars) through their strides.
// Throws engine::Error naming what it cannot evaluate.
void evaluate(const std::vector<Operation>& operations, const std::map<int64_t, void*>& pointers);

// Bytes per element of a data type the evaluation handles; throws for the others.
size_t element_size(cudnnDataType_t type);

}  // namespace engine::emu::detail
