// cuDNN fast path of attention (ops/cuda/attention_cudnn.h): fused flash attention as a cuDNN 9
// backend operation graph, built with the raw descriptor C API (no cudnn-frontend). The graphs are
// the ones cuDNN's runtime-fusion engines recognise as SDPA (the pattern cudnn-frontend lowers its
// SDPA node to), bf16 in and out with f32 compute:
//
//   forward:  S = Q·Kᵀ · scale [causal: row ≥ col ? S : lowest]; M = rowmax S; E = exp(S − M);
//             Z = rowsum E; Stats = M + log Z (f32, our lse); P = E / Z (bf16); O = P·V
//   backward: δ = rowsum(dO ⊙ O); S as above; P = exp(S − Stats); dV = Pᵀ·dO;
//             dS = scale · P ⊙ (dO·Vᵀ − δ); dK = dSᵀ·Q; dQ = dS·K
//
// The backward has no f32 dQ accumulator tensor; cudnn-frontend lowers its deterministic SDPA
// backward that way (cuDNN then takes no atomics into dQ).
//
//   B = batch, H = heads, Tq / Tk = query / key lengths, D = head size
//
// Every cuDNN call goes through CUDNN_CHECK, which throws engine::Error; the public functions catch
// it and hand the call back to the hand-written kernel.
#if !defined(ENGINE_CUDA_EMU)

#include "ops/cuda/attention_cudnn.h"

#include <cudnn.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "engine/cuda/check.h"
#include "engine/cuda/cudnn_check.h"
#include "engine/cuda/device_guard.h"
#include "engine/error.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "ops/cuda/attention.h"
#include "ops/cuda/bfloat16.h"

namespace ops::cuda {

namespace {

using engine::Device;
using engine::DType;
using engine::Tensor;
using Dims = std::array<int64_t, 4>;

// The GPU the call runs on (the caller's tensors'): workspaces and validation tensors go there, not
// to GPU 0 or the process's default device.
Device current_gpu() { return Device::cuda(engine::cuda::current_device()); }

// ---- Owned backend descriptors ----

// One cuDNN backend descriptor, destroyed with its owner.
class Descriptor {
 public:
  explicit Descriptor(cudnnBackendDescriptorType_t type) { CUDNN_CHECK(cudnnBackendCreateDescriptor(type, &desc_)); }
  ~Descriptor() { cudnnBackendDestroyDescriptor(desc_); }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;

  cudnnBackendDescriptor_t get() const { return desc_; }
  void set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count, const void* values) {
    CUDNN_CHECK(cudnnBackendSetAttribute(desc_, name, type, count, values));
  }
  void set_descriptor(cudnnBackendAttributeName_t name, cudnnBackendDescriptor_t value) {
    set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &value);
  }
  void finalize() { CUDNN_CHECK(cudnnBackendFinalize(desc_)); }

 private:
  cudnnBackendDescriptor_t desc_ = nullptr;
};

// Unique ids of the tensors that cross the graph boundary (the variant pack names them).
enum Uid : int64_t {
  kQ = 1, kK, kV, kO, kStats, kScale, kLowest, kOne, kDO, kDQ, kDK, kDV,
  kFirstVirtual = 100,
};

// Row-major strides of `dims`.
Dims contiguous(const Dims& dims) {
  return {dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1};
}

// Builds one operation graph; owns every descriptor it creates, which must outlive the plan.
class GraphBuilder {
 public:
  // A tensor of the graph: virtual ones live only inside the fused kernels; by-value ones are host
  // scalars passed at execution.
  cudnnBackendDescriptor_t tensor(int64_t uid, cudnnDataType_t type, const Dims& dims, const Dims& strides,
                                  bool is_virtual, bool by_value = false) {
    Descriptor& t = make(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    const int64_t alignment = 16;
    t.set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type);
    t.set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims.data());
    t.set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides.data());
    t.set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
    t.set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment);
    t.set(CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual);
    if (by_value) t.set(CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value);
    t.finalize();
    return t.get();
  }
  cudnnBackendDescriptor_t virtual_tensor(cudnnDataType_t type, const Dims& dims, const Dims& strides) {
    return tensor(next_virtual_uid_++, type, dims, strides, true);
  }
  cudnnBackendDescriptor_t scalar(int64_t uid, cudnnDataType_t type) {
    return tensor(uid, type, {1, 1, 1, 1}, {1, 1, 1, 1}, false, true);
  }

  // y = mode(x [, b [, t]]) elementwise with broadcasting; `axis` for GEN_INDEX.
  void pointwise(cudnnPointwiseMode_t mode, cudnnDataType_t math, cudnnBackendDescriptor_t x,
                 cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t t, cudnnBackendDescriptor_t y,
                 int64_t axis = -1) {
    Descriptor& pw = make(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    pw.set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
    pw.set(CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &math);
    if (axis >= 0) pw.set(CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis);
    pw.finalize();
    Descriptor& op = make(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    op.set_descriptor(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw.get());
    op.set_descriptor(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x);
    if (b) op.set_descriptor(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, b);
    if (t) op.set_descriptor(CUDNN_ATTR_OPERATION_POINTWISE_TDESC, t);
    op.set_descriptor(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y);
    add_operation(op);
  }
  void binary(cudnnPointwiseMode_t mode, cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t b,
              cudnnBackendDescriptor_t y) {
    pointwise(mode, CUDNN_DATA_FLOAT, x, b, nullptr, y);
  }

  // y = reduce(x) over the axes where y has size 1.
  void reduction(cudnnReduceTensorOp_t reduce, cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t y) {
    Descriptor& red = make(CUDNN_BACKEND_REDUCTION_DESCRIPTOR);
    const cudnnDataType_t compute = CUDNN_DATA_FLOAT;
    red.set(CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &reduce);
    red.set(CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute);
    red.finalize();
    Descriptor& op = make(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR);
    op.set_descriptor(CUDNN_ATTR_OPERATION_REDUCTION_XDESC, x);
    op.set_descriptor(CUDNN_ATTR_OPERATION_REDUCTION_YDESC, y);
    op.set_descriptor(CUDNN_ATTR_OPERATION_REDUCTION_DESC, red.get());
    add_operation(op);
  }

  // c = a·b batched over the first two axes, accumulated in f32.
  void matmul(cudnnBackendDescriptor_t a, cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t c) {
    Descriptor& mm = make(CUDNN_BACKEND_MATMUL_DESCRIPTOR);
    const cudnnDataType_t compute = CUDNN_DATA_FLOAT;
    mm.set(CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute);
    mm.finalize();
    Descriptor& op = make(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR);
    op.set_descriptor(CUDNN_ATTR_OPERATION_MATMUL_ADESC, a);
    op.set_descriptor(CUDNN_ATTR_OPERATION_MATMUL_BDESC, b);
    op.set_descriptor(CUDNN_ATTR_OPERATION_MATMUL_CDESC, c);
    op.set_descriptor(CUDNN_ATTR_OPERATION_MATMUL_DESC, mm.get());
    add_operation(op);
  }

  // y = x seen with y's dims and strides (a transpose of a virtual tensor).
  void reshape(cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t y) {
    Descriptor& op = make(CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR);
    op.set_descriptor(CUDNN_ATTR_OPERATION_RESHAPE_XDESC, x);
    op.set_descriptor(CUDNN_ATTR_OPERATION_RESHAPE_YDESC, y);
    add_operation(op);
  }

  // The finalised operation graph of everything added so far.
  cudnnBackendDescriptor_t finalize_graph(cudnnHandle_t handle) {
    Descriptor& graph = make(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, int64_t(operations_.size()),
              operations_.data());
    graph.set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
    graph.finalize();
    return graph.get();
  }

  Descriptor& make(cudnnBackendDescriptorType_t type) {
    owned_.push_back(std::make_unique<Descriptor>(type));
    return *owned_.back();
  }
  std::vector<std::unique_ptr<Descriptor>> release() { return std::move(owned_); }

 private:
  void add_operation(Descriptor& op) {
    op.finalize();
    operations_.push_back(op.get());
  }

  std::vector<std::unique_ptr<Descriptor>> owned_;
  std::vector<cudnnBackendDescriptor_t> operations_;
  int64_t next_virtual_uid_ = kFirstVirtual;
};

// ---- The two graphs ----

// Shapes of the tensors in both graphs.
struct GraphShapes {
  Dims q, kt, v, vt, o, scores, scores_t, row;
  Dims q_strides, kt_strides, v_strides, vt_strides, o_strides, scores_strides, scores_t_strides, row_strides;

  GraphShapes(int64_t B, int64_t H, int64_t Tq, int64_t Tk, int64_t D) {
    q = o = {B, H, Tq, D};
    q_strides = o_strides = contiguous(q);
    v = {B, H, Tk, D};
    v_strides = contiguous(v);
    kt = vt = {B, H, D, Tk};                    // K and V read transposed: element (d, j) at j·D + d
    kt_strides = vt_strides = {H * Tk * D, Tk * D, 1, D};
    scores = {B, H, Tq, Tk};
    scores_strides = contiguous(scores);
    scores_t = {B, H, Tk, Tq};                  // the scores read transposed
    scores_t_strides = {H * Tq * Tk, Tq * Tk, 1, Tk};
    row = {B, H, Tq, 1};
    row_strides = {H * Tq, Tq, 1, 1};
  }
};

// scale · q·kᵀ, with keys after the query masked to the lowest float when causal (top-left
// alignment: key j ≤ query i). Returns the virtual f32 scores.
cudnnBackendDescriptor_t scaled_scores(GraphBuilder& g, const GraphShapes& s, cudnnBackendDescriptor_t q,
                                       cudnnBackendDescriptor_t kt, cudnnBackendDescriptor_t scale, bool causal) {
  cudnnBackendDescriptor_t raw = g.virtual_tensor(CUDNN_DATA_FLOAT, s.scores, s.scores_strides);
  g.matmul(q, kt, raw);
  cudnnBackendDescriptor_t scaled = g.virtual_tensor(CUDNN_DATA_FLOAT, s.scores, s.scores_strides);
  g.binary(CUDNN_POINTWISE_MUL, raw, scale, scaled);
  if (!causal) return scaled;
  cudnnBackendDescriptor_t row = g.virtual_tensor(CUDNN_DATA_INT32, s.scores, s.scores_strides);
  g.pointwise(CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_INT32, scaled, nullptr, nullptr, row, 2);
  cudnnBackendDescriptor_t col = g.virtual_tensor(CUDNN_DATA_INT32, s.scores, s.scores_strides);
  g.pointwise(CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_INT32, scaled, nullptr, nullptr, col, 3);
  cudnnBackendDescriptor_t visible = g.virtual_tensor(CUDNN_DATA_BOOLEAN, s.scores, s.scores_strides);
  g.pointwise(CUDNN_POINTWISE_CMP_GE, CUDNN_DATA_BOOLEAN, row, col, nullptr, visible);
  cudnnBackendDescriptor_t masked = g.virtual_tensor(CUDNN_DATA_FLOAT, s.scores, s.scores_strides);
  g.pointwise(CUDNN_POINTWISE_BINARY_SELECT, CUDNN_DATA_FLOAT, scaled, g.scalar(kLowest, CUDNN_DATA_FLOAT), visible,
              masked);
  return masked;
}

// The forward graph (header comment): Q, K, V, O in bf16; Stats (B, H, Tq, 1) in f32.
void build_forward(GraphBuilder& g, const GraphShapes& s, bool causal) {
  cudnnBackendDescriptor_t q = g.tensor(kQ, CUDNN_DATA_BFLOAT16, s.q, s.q_strides, false);
  cudnnBackendDescriptor_t kt = g.tensor(kK, CUDNN_DATA_BFLOAT16, s.kt, s.kt_strides, false);
  cudnnBackendDescriptor_t v = g.tensor(kV, CUDNN_DATA_BFLOAT16, s.v, s.v_strides, false);
  cudnnBackendDescriptor_t o = g.tensor(kO, CUDNN_DATA_BFLOAT16, s.o, s.o_strides, false);
  cudnnBackendDescriptor_t stats = g.tensor(kStats, CUDNN_DATA_FLOAT, s.row, s.row_strides, false);
  cudnnBackendDescriptor_t scores = scaled_scores(g, s, q, kt, g.scalar(kScale, CUDNN_DATA_FLOAT), causal);

  cudnnBackendDescriptor_t row_max = g.virtual_tensor(CUDNN_DATA_FLOAT, s.row, s.row_strides);
  g.reduction(CUDNN_REDUCE_TENSOR_MAX, scores, row_max);
  cudnnBackendDescriptor_t shifted = g.virtual_tensor(CUDNN_DATA_FLOAT, s.scores, s.scores_strides);
  g.binary(CUDNN_POINTWISE_SUB, scores, row_max, shifted);
  cudnnBackendDescriptor_t exps = g.virtual_tensor(CUDNN_DATA_FLOAT, s.scores, s.scores_strides);
  g.pointwise(CUDNN_POINTWISE_EXP, CUDNN_DATA_FLOAT, shifted, nullptr, nullptr, exps);
  cudnnBackendDescriptor_t row_sum = g.virtual_tensor(CUDNN_DATA_FLOAT, s.row, s.row_strides);
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, exps, row_sum);
  cudnnBackendDescriptor_t log_sum = g.virtual_tensor(CUDNN_DATA_FLOAT, s.row, s.row_strides);
  g.pointwise(CUDNN_POINTWISE_LOG, CUDNN_DATA_FLOAT, row_sum, nullptr, nullptr, log_sum);
  g.binary(CUDNN_POINTWISE_ADD, row_max, log_sum, stats);
  cudnnBackendDescriptor_t probs = g.virtual_tensor(CUDNN_DATA_BFLOAT16, s.scores, s.scores_strides);
  g.binary(CUDNN_POINTWISE_DIV, exps, row_sum, probs);
  g.matmul(probs, v, o);
}

// The backward graph (header comment): Q, K, V, O, dO, dQ, dK, dV in bf16; Stats in f32.
void build_backward(GraphBuilder& g, const GraphShapes& s, bool causal) {
  cudnnBackendDescriptor_t q = g.tensor(kQ, CUDNN_DATA_BFLOAT16, s.q, s.q_strides, false);
  cudnnBackendDescriptor_t kt = g.tensor(kK, CUDNN_DATA_BFLOAT16, s.kt, s.kt_strides, false);
  cudnnBackendDescriptor_t vt = g.tensor(kV, CUDNN_DATA_BFLOAT16, s.vt, s.vt_strides, false);
  cudnnBackendDescriptor_t o = g.tensor(kO, CUDNN_DATA_BFLOAT16, s.o, s.o_strides, false);
  cudnnBackendDescriptor_t d_o = g.tensor(kDO, CUDNN_DATA_BFLOAT16, s.o, s.o_strides, false);
  cudnnBackendDescriptor_t stats = g.tensor(kStats, CUDNN_DATA_FLOAT, s.row, s.row_strides, false);
  cudnnBackendDescriptor_t dq = g.tensor(kDQ, CUDNN_DATA_BFLOAT16, s.q, s.q_strides, false);
  cudnnBackendDescriptor_t dk = g.tensor(kDK, CUDNN_DATA_BFLOAT16, s.v, s.v_strides, false);
  cudnnBackendDescriptor_t dv = g.tensor(kDV, CUDNN_DATA_BFLOAT16, s.v, s.v_strides, false);
  cudnnBackendDescriptor_t scale = g.scalar(kScale, CUDNN_DATA_FLOAT);
  cudnnBackendDescriptor_t one = g.scalar(kOne, CUDNN_DATA_FLOAT);

  // δ = rowsum(dO ⊙ O)
  cudnnBackendDescriptor_t do_o = g.virtual_tensor(CUDNN_DATA_FLOAT, s.o, s.o_strides);
  g.binary(CUDNN_POINTWISE_MUL, d_o, o, do_o);
  cudnnBackendDescriptor_t delta_sum = g.virtual_tensor(CUDNN_DATA_FLOAT, s.row, s.row_strides);
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, do_o, delta_sum);
  cudnnBackendDescriptor_t delta = g.virtual_tensor(CUDNN_DATA_FLOAT, s.row, s.row_strides);
  g.binary(CUDNN_POINTWISE_MUL, delta_sum, one, delta);

  // P = exp(S − Stats); dV = Pᵀ·dO
  cudnnBackendDescriptor_t scores = scaled_scores(g, s, q, kt, scale, causal);
  cudnnBackendDescriptor_t shifted = g.virtual_tensor(CUDNN_DATA_FLOAT, s.scores, s.scores_strides);
  g.binary(CUDNN_POINTWISE_SUB, scores, stats, shifted);
  cudnnBackendDescriptor_t probs = g.virtual_tensor(CUDNN_DATA_FLOAT, s.scores, s.scores_strides);
  g.pointwise(CUDNN_POINTWISE_EXP, CUDNN_DATA_FLOAT, shifted, nullptr, nullptr, probs);
  cudnnBackendDescriptor_t probs_t = g.virtual_tensor(CUDNN_DATA_BFLOAT16, s.scores_t, s.scores_t_strides);
  g.reshape(probs, probs_t);
  g.matmul(probs_t, d_o, dv);

  // dS = scale · P ⊙ (dO·Vᵀ − δ); dK = dSᵀ·Q
  cudnnBackendDescriptor_t dp = g.virtual_tensor(CUDNN_DATA_FLOAT, s.scores, s.scores_strides);
  g.matmul(d_o, vt, dp);
  cudnnBackendDescriptor_t dp_kept = g.virtual_tensor(CUDNN_DATA_FLOAT, s.scores, s.scores_strides);
  g.binary(CUDNN_POINTWISE_MUL, dp, one, dp_kept);
  cudnnBackendDescriptor_t dp_centred = g.virtual_tensor(CUDNN_DATA_FLOAT, s.scores, s.scores_strides);
  g.binary(CUDNN_POINTWISE_SUB, dp_kept, delta, dp_centred);
  cudnnBackendDescriptor_t ds_unscaled = g.virtual_tensor(CUDNN_DATA_FLOAT, s.scores, s.scores_strides);
  g.binary(CUDNN_POINTWISE_MUL, dp_centred, probs, ds_unscaled);
  cudnnBackendDescriptor_t ds = g.virtual_tensor(CUDNN_DATA_FLOAT, s.scores, s.scores_strides);
  g.binary(CUDNN_POINTWISE_MUL, ds_unscaled, scale, ds);
  cudnnBackendDescriptor_t ds_t = g.virtual_tensor(CUDNN_DATA_BFLOAT16, s.scores_t, s.scores_t_strides);
  g.reshape(ds, ds_t);
  g.matmul(ds_t, q, dk);

  // dQ = dS·K (K is the input Kᵀ seen back in its stored layout)
  cudnnBackendDescriptor_t k = g.virtual_tensor(CUDNN_DATA_BFLOAT16, s.v, s.v_strides);
  g.reshape(kt, k);
  g.matmul(ds, k, dq);
}

// ---- Plans, cache and state ----

// A finalised execution plan and the descriptors it was built from.
struct Plan {
  std::vector<std::unique_ptr<Descriptor>> descriptors;
  cudnnBackendDescriptor_t plan = nullptr;
  int64_t workspace_bytes = 0;
};

// The first engine configuration, in heuristic order, whose plan finalises; throws if none does.
void finalize_plan(GraphBuilder& g, cudnnBackendDescriptor_t graph, cudnnHandle_t handle, Plan& plan) {
  Descriptor& heuristics = g.make(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
  heuristics.set_descriptor(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph);
  const cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
  heuristics.set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
  heuristics.finalize();
  int64_t count = 0;
  CUDNN_CHECK(cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                       0, &count, nullptr));
  ENGINE_CHECK(count > 0, "cuDNN attention: the engine heuristics found no engine for the graph");
  std::vector<cudnnBackendDescriptor_t> configs;
  for (int64_t i = 0; i < count; ++i) configs.push_back(g.make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR).get());
  CUDNN_CHECK(cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                       count, &count, configs.data()));
  std::string last_error;
  for (int64_t i = 0; i < count; ++i) {
    Descriptor& candidate = g.make(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
    try {
      candidate.set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
      candidate.set_descriptor(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, configs[size_t(i)]);
      candidate.finalize();
    } catch (const engine::Error& e) {
      last_error = e.what();
      continue;
    }
    CUDNN_CHECK(cudnnBackendGetAttribute(candidate.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64,
                                         1, nullptr, &plan.workspace_bytes));
    plan.plan = candidate.get();
    return;
  }
  throw engine::Error(engine::detail::concat("cuDNN attention: none of the ", count,
                                             " engine configurations finalises a plan; last: ", last_error));
}

// Cache key: direction, B, H, Tq, Tk, D, causal, element type.
using PlanKey = std::tuple<bool, int64_t, int64_t, int64_t, int64_t, int64_t, bool, int>;

struct State {
  std::mutex mutex;
  cudnnHandle_t handle = nullptr;
  CudnnAttentionStatus status;
  std::map<PlanKey, std::unique_ptr<Plan>> plans;  // null: cuDNN has no plan for that shape
};

// Never destroyed: cuDNN and the CUDA context may be gone by the time static destructors run.
State& state() {
  static State* const instance = new State;
  return *instance;
}

void warn(const std::string& message) { std::fprintf(stderr, "engine: %s\n", message.c_str()); }

// The cached plan for a call, built at first use; null (after one warning) if cuDNN has none.
// Caller holds the state's mutex.
const Plan* plan_for(State& st, bool backward, const AttentionSizes& sz, bool causal) {
  const PlanKey key{backward, sz.batch, sz.heads, sz.query_len, sz.key_len, sz.qk_dim, causal,
                    int(CUDNN_DATA_BFLOAT16)};
  auto found = st.plans.find(key);
  if (found != st.plans.end()) return found->second.get();
  auto plan = std::make_unique<Plan>();
  try {
    GraphBuilder g;
    const GraphShapes shapes(sz.batch, sz.heads, sz.query_len, sz.key_len, sz.qk_dim);
    if (backward)
      build_backward(g, shapes, causal);
    else
      build_forward(g, shapes, causal);
    finalize_plan(g, g.finalize_graph(st.handle), st.handle, *plan);
    plan->descriptors = g.release();
  } catch (const engine::Error& e) {
    warn(engine::detail::concat("cuDNN attention has no ", backward ? "backward" : "forward", " plan for B=", sz.batch,
                                " H=", sz.heads, " Tq=", sz.query_len, " Tk=", sz.key_len, " D=", sz.qk_dim,
                                causal ? " causal" : "", "; this shape uses the hand-written kernel (", e.what(), ")"));
    plan.reset();
  }
  return st.plans.emplace(key, std::move(plan)).first->second.get();
}

// Runs `plan` with the given tensors (uid → device pointer, or host pointer for by-value scalars).
void execute(State& st, const Plan& plan, const std::vector<int64_t>& uids, const std::vector<void*>& pointers,
             cudaStream_t stream) {
  Tensor workspace;
  void* workspace_ptr = nullptr;
  if (plan.workspace_bytes > 0) {
    workspace = Tensor::empty({(plan.workspace_bytes + 3) / 4}, DType::i32, current_gpu());
    workspace_ptr = workspace.data<int32_t>();
  }
  Descriptor pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, int64_t(uids.size()), uids.data());
  pack.set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, int64_t(pointers.size()), pointers.data());
  pack.set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace_ptr);
  pack.finalize();
  CUDNN_CHECK(cudnnSetStream(st.handle, stream));
  CUDNN_CHECK(cudnnBackendExecute(st.handle, plan.plan, pack.get()));
}

// A device buffer of n bf16 values (an i32 tensor of half the count keeps it alive).
struct Bf16Buffer {
  Tensor storage;
  uint16_t* data() const { return reinterpret_cast<uint16_t*>(storage.data<int32_t>()); }
};
Bf16Buffer bf16_buffer(int64_t n) { return {Tensor::empty({(n + 1) / 2}, DType::i32, current_gpu())}; }
Bf16Buffer to_bf16(const float* x, int64_t n, cudaStream_t stream) {
  Bf16Buffer buffer = bf16_buffer(n);
  f32_to_bf16(buffer.data(), x, n, stream);
  return buffer;
}

// The forward through cuDNN; false if cuDNN has no plan for the shape. Caller holds the mutex.
bool run_forward(State& st, float* out, float* lse, const float* q, const float* k, const float* v,
                 const AttentionSizes& sz, const AttentionBias& bias, cudaStream_t stream) {
  const Plan* plan = plan_for(st, false, sz, bias.causal);
  if (!plan) return false;
  const int64_t q_count = sz.batch * sz.heads * sz.query_len * sz.qk_dim;
  const int64_t kv_count = sz.batch * sz.heads * sz.key_len * sz.qk_dim;
  const Bf16Buffer q16 = to_bf16(q, q_count, stream), k16 = to_bf16(k, kv_count, stream),
                   v16 = to_bf16(v, kv_count, stream);
  const Bf16Buffer o16 = bf16_buffer(q_count);
  float scale = float(bias.scale), lowest = std::numeric_limits<float>::lowest();
  std::vector<int64_t> uids = {kQ, kK, kV, kO, kStats, kScale};
  std::vector<void*> pointers = {q16.data(), k16.data(), v16.data(), o16.data(), lse, &scale};
  if (bias.causal) {
    uids.push_back(kLowest);
    pointers.push_back(&lowest);
  }
  execute(st, *plan, uids, pointers, stream);
  bf16_to_f32(out, o16.data(), q_count, stream);
  return true;
}

// The backward through cuDNN; false if cuDNN has no plan for the shape. Caller holds the mutex.
bool run_backward(State& st, float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                  const float* v, const float* out, const float* lse, const AttentionSizes& sz,
                  const AttentionBias& bias, cudaStream_t stream) {
  const Plan* plan = plan_for(st, true, sz, bias.causal);
  if (!plan) return false;
  const int64_t q_count = sz.batch * sz.heads * sz.query_len * sz.qk_dim;
  const int64_t kv_count = sz.batch * sz.heads * sz.key_len * sz.qk_dim;
  const Bf16Buffer q16 = to_bf16(q, q_count, stream), k16 = to_bf16(k, kv_count, stream),
                   v16 = to_bf16(v, kv_count, stream), o16 = to_bf16(out, q_count, stream),
                   do16 = to_bf16(dout, q_count, stream);
  const Bf16Buffer dq16 = bf16_buffer(q_count), dk16 = bf16_buffer(kv_count), dv16 = bf16_buffer(kv_count);
  float scale = float(bias.scale), lowest = std::numeric_limits<float>::lowest(), one = 1.0f;
  std::vector<int64_t> uids = {kQ, kK, kV, kO, kDO, kStats, kDQ, kDK, kDV, kScale, kOne};
  std::vector<void*> pointers = {q16.data(),  k16.data(),  v16.data(),  o16.data(), do16.data(), const_cast<float*>(lse),
                                 dq16.data(), dk16.data(), dv16.data(), &scale,     &one};
  if (bias.causal) {
    uids.push_back(kLowest);
    pointers.push_back(&lowest);
  }
  execute(st, *plan, uids, pointers, stream);
  bf16_to_f32(dq, dq16.data(), q_count, stream);
  bf16_to_f32(dk, dk16.data(), kv_count, stream);
  bf16_to_f32(dv, dv16.data(), kv_count, stream);
  return true;
}

// ---- Validation against the hand-written kernel ----

// max |got − ref| / max |ref| over two device f32 tensors of one shape (∞ if NaNs differ).
double relative_error(const Tensor& got, const Tensor& ref) {
  const std::vector<float> a = got.to(Device::cpu()).to_vector<float>();
  const std::vector<float> b = ref.to(Device::cpu()).to_vector<float>();
  double max_err = 0.0, max_ref = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) return std::numeric_limits<double>::infinity();
    max_err = std::max(max_err, std::fabs(double(a[i]) - double(b[i])));
    max_ref = std::max(max_ref, std::fabs(double(b[i])));
  }
  return max_ref > 0.0 ? max_err / max_ref : max_err;
}

// A random device tensor whose values are bf16-exact, so that both paths read the same inputs.
Tensor random_bf16_exact(const engine::Shape& shape, engine::Generator& gen, cudaStream_t stream) {
  Tensor x = Tensor::randn(shape, gen).to(current_gpu());
  const Bf16Buffer rounded = to_bf16(x.data<float>(), x.numel(), stream);
  bf16_to_f32(x.data<float>(), rounded.data(), x.numel(), stream);
  return x;
}

// Runs one case through cuDNN and the kernel; returns {forward error, backward error}, or throws.
std::pair<double, double> compare_with_kernel(State& st, const AttentionSizes& sz, bool causal,
                                              engine::Generator& gen, cudaStream_t stream) {
  const AttentionBias bias{1.0 / std::sqrt(double(sz.qk_dim)), causal, nullptr, nullptr, {}};
  const engine::Shape q_shape{sz.batch, sz.heads, sz.query_len, sz.qk_dim};
  const engine::Shape kv_shape{sz.batch, sz.heads, sz.key_len, sz.qk_dim};
  const engine::Shape row_shape{sz.batch, sz.heads, sz.query_len};
  const Tensor q = random_bf16_exact(q_shape, gen, stream), k = random_bf16_exact(kv_shape, gen, stream),
               v = random_bf16_exact(kv_shape, gen, stream), dout = random_bf16_exact(q_shape, gen, stream);
  auto make = [](const engine::Shape& shape) { return Tensor::empty(shape, DType::f32, current_gpu()); };

  Tensor out_c = make(q_shape), lse_c = make(row_shape), dq_c = make(q_shape), dk_c = make(kv_shape),
         dv_c = make(kv_shape);
  ENGINE_CHECK(run_forward(st, out_c.data<float>(), lse_c.data<float>(), q.data<float>(), k.data<float>(),
                           v.data<float>(), sz, bias, stream),
               "cuDNN attention: no forward plan for the validation case");
  ENGINE_CHECK(run_backward(st, dq_c.data<float>(), dk_c.data<float>(), dv_c.data<float>(), dout.data<float>(),
                            q.data<float>(), k.data<float>(), v.data<float>(), out_c.data<float>(),
                            lse_c.data<float>(), sz, bias, stream),
               "cuDNN attention: no backward plan for the validation case");

  Tensor out_k = make(q_shape), lse_k = make(row_shape), delta = make(row_shape), dq_k = make(q_shape),
         dk_k = make(kv_shape), dv_k = make(kv_shape);
  attention_forward<float>(out_k.data<float>(), lse_k.data<float>(), q.data<float>(), k.data<float>(),
                           v.data<float>(), sz, bias, stream);
  attention_backward<float>(dq_k.data<float>(), dk_k.data<float>(), dv_k.data<float>(), delta.data<float>(),
                            dout.data<float>(), q.data<float>(), k.data<float>(), v.data<float>(),
                            out_k.data<float>(), lse_k.data<float>(), sz, bias, stream);
  CUDA_CHECK(cudaStreamSynchronize(stream));

  const double forward = std::max(relative_error(out_c, out_k), relative_error(lse_c, lse_k));
  const double backward =
      std::max({relative_error(dq_c, dq_k), relative_error(dk_c, dk_k), relative_error(dv_c, dv_k)});
  return {forward, backward};
}

void disable(State& st, const std::string& reason) {
  st.status.state = CudnnAttentionState::disabled;
  st.status.reason = reason;
  warn("cuDNN attention disabled, using the hand-written kernel: " + reason);
}

// At first use: creates the handle and checks cuDNN against the kernel on a non-causal case with
// Tq ≠ Tk and a causal one, both with lengths that are not multiples of cuDNN's 64-row tiles.
// Caller holds the mutex. True when the path may be used.
bool ensure_validated(State& st, cudaStream_t stream) {
  if (st.status.state != CudnnAttentionState::unchecked) return st.status.state == CudnnAttentionState::validated;
  try {
    CUDNN_CHECK(cudnnCreate(&st.handle));
    engine::Generator gen(0x5eed);
    double forward = 0.0, backward = 0.0;
    for (const auto& [sizes, causal] : {std::pair{AttentionSizes{2, 2, 37, 70, 64, 64}, false},
                                        std::pair{AttentionSizes{1, 3, 70, 70, 32, 32}, true}}) {
      const auto [f, b] = compare_with_kernel(st, sizes, causal, gen, stream);
      forward = std::max(forward, f);
      backward = std::max(backward, b);
    }
    st.status.forward_error = forward;
    st.status.backward_error = backward;
    if (!(forward < kCudnnForwardTolerance && backward < kCudnnBackwardTolerance)) {
      disable(st, engine::detail::concat("it disagrees with the hand-written kernel: relative error forward ", forward,
                                         " (tolerance ", kCudnnForwardTolerance, "), backward ", backward,
                                         " (tolerance ", kCudnnBackwardTolerance, ")"));
      return false;
    }
    st.status.state = CudnnAttentionState::validated;
    return true;
  } catch (const engine::Error& e) {
    disable(st, e.what());
    return false;
  }
}

}  // namespace

CudnnAttentionStatus cudnn_attention_status() {
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mutex);
  return st.status;
}

bool cudnn_attention_supports(const AttentionSizes& sizes, const AttentionBias& bias) {
  const int64_t D = sizes.qk_dim;
  return !bias.alibi_slopes && !bias.key_keep && bias.dropout.p == 0.0 && !bias.score_bias && sizes.value_dim == D &&
         D % 8 == 0 && D <= 128 && (!bias.causal || sizes.query_len == sizes.key_len);
}

bool cudnn_attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                             const AttentionSizes& sizes, const AttentionBias& bias, cudaStream_t stream) {
  if (!cudnn_attention_supports(sizes, bias)) return false;
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mutex);
  if (!ensure_validated(st, stream)) return false;
  try {
    return run_forward(st, out, lse, q, k, v, sizes, bias, stream);
  } catch (const engine::Error& e) {
    disable(st, e.what());
    return false;
  }
}

bool cudnn_attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                              const float* v, const float* out, const float* lse, const AttentionSizes& sizes,
                              const AttentionBias& bias, cudaStream_t stream) {
  if (!cudnn_attention_supports(sizes, bias)) return false;
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mutex);
  if (!ensure_validated(st, stream)) return false;
  try {
    return run_backward(st, dq, dk, dv, dout, q, k, v, out, lse, sizes, bias, stream);
  } catch (const engine::Error& e) {
    disable(st, e.what());
    return false;
  }
}

}  // namespace ops::cuda

#endif  // !defined(ENGINE_CUDA_EMU)
