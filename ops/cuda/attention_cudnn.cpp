// cuDNN path of attention (ops/cuda/attention_cudnn.h): fused flash attention as a cuDNN 9 backend
// operation graph, built with the raw descriptor C API (no cudnn-frontend), node by node as
// cudnn-frontend's composite SDPA lowering builds it for cuDNN 9.x (docs/cuda.md, "cuDNN fast path",
// lists the nodes and what changed from the 8.9-era lowering):
//
//   forward:  S = Q·Kᵀ · scale [+ slope_h · (col − row)] [causal: keep row (+ Tk − Tq) ≥ col, else −inf];
//             M = rowmax S; E = exp(S − M); Z = rowsum E; Stats = M + log Z (f32, our lse);
//             P = E / Z (bf16); O = P·V
//   backward: δ = rowsum(dO ⊙ O) · 1 (a real f32 tensor); S as above; P = exp(S − Stats) [masked];
//             dV = Pᵀ·dO; dS = (dO·Vᵀ − δ) ⊙ P · scale; dK = dSᵀ·Q; dQ = dS·K
//
// Deterministic backward: dQ is the matmul's direct output (no f32 dQ accumulator tensor, the
// frontend's deterministic lowering), and the plan is built only from engine configurations whose
// engine cuDNN does not mark CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC (its atomics-into-dQ kernels).
//
//   B = batch, H = heads, Tq / Tk = query / key lengths, D = head size
//
// Every cuDNN call goes through CUDNN_CHECK, which throws engine::Error with cuDNN's own account of
// the failure; the public functions let it reach the caller.
//
// The standard headers and engine/tensor.h come before any CUDA header: under the emulator those
// define CUDA's keywords as macros, and __noinline__ would break libstdc++'s <memory>.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "ops/cuda/attention_cudnn.h"

#include "engine/cuda/check.h"
#include "engine/cuda/cudnn_check.h"
#include "engine/cuda/device_guard.h"
#include "engine/error.h"
#include "engine/rng.h"
#include "ops/cuda/attention.h"
#include "ops/cuda/bfloat16.h"

namespace ops::cuda {

namespace {

using engine::Device;
using engine::Dtype;
using Dims = std::array<int64_t, 4>;

// The GPU the call runs on (the caller's tensors'): workspaces and validation tensors go there.
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
  kQ = 1, kK, kV, kO, kStats, kScale, kMaskFill, kDO, kDQ, kDK, kDV, kRowSums, kOne, kAlibiSlopes, kKeyLength,
  kQueryLength,
  kFirstVirtual = 100,
};

// An operand's dims and element strides as the graph sees it.
struct Layout {
  Dims dims, strides;
};

// Row-major strides of `dims`.
Layout dense(const Dims& dims) { return {dims, {dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1}}; }

// A (B, H, T, D) view's layout, and the same seen transposed as (B, H, D, T).
Layout layout_of(const Tensor& x) {
  return {{x.size(0), x.size(1), x.size(2), x.size(3)}, {x.strides()[0], x.strides()[1], x.strides()[2], 1}};
}
Layout transposed(const Layout& l) {
  return {{l.dims[0], l.dims[1], l.dims[3], l.dims[2]}, {l.strides[0], l.strides[1], l.strides[3], l.strides[2]}};
}

// Builds one operation graph; owns every descriptor it creates, which must outlive the plan.
class GraphBuilder {
 public:
  // A tensor of the graph: virtual ones live only inside the fused kernels; by-value ones are host
  // scalars passed at execution.
  cudnnBackendDescriptor_t tensor(int64_t uid, cudnnDataType_t type, const Layout& layout, bool is_virtual,
                                  bool by_value = false) {
    Descriptor& t = make(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    const int64_t alignment = 16;
    t.set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type);
    t.set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, layout.dims.data());
    t.set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, layout.strides.data());
    t.set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
    t.set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment);
    t.set(CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual);
    if (by_value) t.set(CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value);
    t.finalize();
    return t.get();
  }
  cudnnBackendDescriptor_t real(int64_t uid, cudnnDataType_t type, const Layout& layout) {
    return tensor(uid, type, layout, false);
  }
  cudnnBackendDescriptor_t virtual_tensor(cudnnDataType_t type, const Layout& layout) {
    return tensor(next_virtual_uid_++, type, layout, true);
  }
  cudnnBackendDescriptor_t scalar(int64_t uid, cudnnDataType_t type) {
    return tensor(uid, type, {{1, 1, 1, 1}, {1, 1, 1, 1}}, false, true);
  }

  // y = mode(x [, b [, t]]) elementwise with broadcasting, computed in `math`; `axis` for GEN_INDEX.
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
  // y = mode(x, b) in f32 into a new virtual tensor of `type` and `layout`.
  cudnnBackendDescriptor_t binary(cudnnPointwiseMode_t mode, cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t b,
                                  const Layout& layout, cudnnDataType_t type = CUDNN_DATA_FLOAT) {
    cudnnBackendDescriptor_t y = virtual_tensor(type, layout);
    pointwise(mode, CUDNN_DATA_FLOAT, x, b, nullptr, y);
    return y;
  }
  cudnnBackendDescriptor_t unary(cudnnPointwiseMode_t mode, cudnnBackendDescriptor_t x, const Layout& layout) {
    cudnnBackendDescriptor_t y = virtual_tensor(CUDNN_DATA_FLOAT, layout);
    pointwise(mode, CUDNN_DATA_FLOAT, x, nullptr, nullptr, y);
    return y;
  }

  // y = reduce(x) over the axes where y has size 1, in f32.
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

  // y = x seen with y's dims and strides (a transpose of the same memory).
  void reshape(cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t y) {
    Descriptor& op = make(CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR);
    op.set_descriptor(CUDNN_ATTR_OPERATION_RESHAPE_XDESC, x);
    op.set_descriptor(CUDNN_ATTR_OPERATION_RESHAPE_YDESC, y);
    add_operation(op);
  }

  // The finalised operation graph of everything added so far. (cuDNN 9 marks the graph's handle
  // attribute deprecated in favour of a device-properties descriptor for ahead-of-time builds;
  // cudnn-frontend still sets the handle when it has one, as here.)
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

// Everything a graph depends on: the sizes, the options and every real operand's layout.
struct GraphSpec {
  bool backward = false;
  int64_t B = 0, H = 0, Tq = 0, Tk = 0, D = 0;
  bool causal = false, alibi = false;
  Layout q, k, v, o, d_o, dq, dk, dv;  // k and v as stored, (B, H, Tk, D)

  // The plan cache's key: equal specs build equal graphs.
  std::vector<int64_t> key() const {
    std::vector<int64_t> key = {backward, B, H, Tq, Tk, D, causal, alibi};
    for (const Layout* l : {&q, &k, &v, &o, &d_o, &dq, &dk, &dv})
      key.insert(key.end(), l->strides.begin(), l->strides.end());
    return key;
  }
  Layout scores() const { return dense({B, H, Tq, Tk}); }
  Layout scores_transposed() const { return transposed(scores()); }  // (B, H, Tk, Tq) over the same memory
  Layout rows() const { return dense({B, H, Tq, 1}); }
};

// The score subgraph both directions share up to the softmax: scale · Q·Kᵀ [+ ALiBi]. In the
// backward `stats` is subtracted next (before the mask, as cudnn-frontend orders it). Returns the
// virtual f32 scores.
cudnnBackendDescriptor_t scaled_scores(GraphBuilder& g, const GraphSpec& s, cudnnBackendDescriptor_t q,
                                       cudnnBackendDescriptor_t kt, cudnnBackendDescriptor_t scale) {
  const Layout scores = s.scores();
  cudnnBackendDescriptor_t raw = g.virtual_tensor(CUDNN_DATA_FLOAT, scores);
  g.matmul(q, kt, raw);
  cudnnBackendDescriptor_t scaled = g.binary(CUDNN_POINTWISE_MUL, raw, scale, scores);
  if (!s.alibi) return scaled;
  // slope_h · (col − row), with index arithmetic in int32.
  cudnnBackendDescriptor_t row = g.virtual_tensor(CUDNN_DATA_INT32, scores);
  g.pointwise(CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_INT32, scaled, nullptr, nullptr, row, 2);
  cudnnBackendDescriptor_t col = g.virtual_tensor(CUDNN_DATA_INT32, scores);
  g.pointwise(CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_INT32, scaled, nullptr, nullptr, col, 3);
  cudnnBackendDescriptor_t distance = g.virtual_tensor(CUDNN_DATA_INT32, scores);
  g.pointwise(CUDNN_POINTWISE_SUB, CUDNN_DATA_INT32, col, row, nullptr, distance);
  cudnnBackendDescriptor_t slopes = g.real(kAlibiSlopes, CUDNN_DATA_FLOAT, dense({1, s.H, 1, 1}));
  cudnnBackendDescriptor_t bias = g.binary(CUDNN_POINTWISE_MUL, distance, slopes, scores);
  return g.binary(CUDNN_POINTWISE_ADD, scaled, bias, scores);
}

// The causal mask: keeps key col for query row when row + (Tk − Tq) ≥ col (our bottom-right
// alignment; with Tq = Tk it is cuDNN's plain top-left mask row ≥ col), else −inf (cuDNN ≥ 9.10
// takes −inf, where the 8.9 lowering used the lowest float).
cudnnBackendDescriptor_t causal_mask(GraphBuilder& g, const GraphSpec& s, cudnnBackendDescriptor_t x) {
  const Layout scores = s.scores();
  cudnnBackendDescriptor_t row = g.virtual_tensor(CUDNN_DATA_INT32, scores);
  g.pointwise(CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_INT32, x, nullptr, nullptr, row, 2);
  cudnnBackendDescriptor_t col = g.virtual_tensor(CUDNN_DATA_INT32, scores);
  g.pointwise(CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_INT32, x, nullptr, nullptr, col, 3);
  if (s.Tq != s.Tk) {
    cudnnBackendDescriptor_t shifted = g.virtual_tensor(CUDNN_DATA_INT32, scores);
    g.pointwise(CUDNN_POINTWISE_ADD, CUDNN_DATA_INT32, row, g.scalar(kKeyLength, CUDNN_DATA_INT32), nullptr, shifted);
    row = g.virtual_tensor(CUDNN_DATA_INT32, scores);
    g.pointwise(CUDNN_POINTWISE_SUB, CUDNN_DATA_INT32, shifted, g.scalar(kQueryLength, CUDNN_DATA_INT32), nullptr, row);
  }
  cudnnBackendDescriptor_t keep = g.virtual_tensor(CUDNN_DATA_BOOLEAN, scores);
  g.pointwise(CUDNN_POINTWISE_CMP_GE, CUDNN_DATA_BOOLEAN, row, col, nullptr, keep);
  cudnnBackendDescriptor_t masked = g.virtual_tensor(CUDNN_DATA_FLOAT, scores);
  g.pointwise(CUDNN_POINTWISE_BINARY_SELECT, CUDNN_DATA_FLOAT, x, g.scalar(kMaskFill, CUDNN_DATA_FLOAT), keep, masked);
  return masked;
}

// The forward graph (header comment): Q, K, V, O in bf16 with the caller's strides; Stats f32.
void build_forward(GraphBuilder& g, const GraphSpec& s) {
  cudnnBackendDescriptor_t q = g.real(kQ, CUDNN_DATA_BFLOAT16, s.q);
  cudnnBackendDescriptor_t kt = g.real(kK, CUDNN_DATA_BFLOAT16, transposed(s.k));
  cudnnBackendDescriptor_t v = g.real(kV, CUDNN_DATA_BFLOAT16, s.v);
  cudnnBackendDescriptor_t o = g.real(kO, CUDNN_DATA_BFLOAT16, s.o);
  cudnnBackendDescriptor_t stats = g.real(kStats, CUDNN_DATA_FLOAT, s.rows());
  cudnnBackendDescriptor_t scores = scaled_scores(g, s, q, kt, g.scalar(kScale, CUDNN_DATA_FLOAT));
  if (s.causal) scores = causal_mask(g, s, scores);

  const Layout all = s.scores(), rows = s.rows();
  cudnnBackendDescriptor_t row_max = g.virtual_tensor(CUDNN_DATA_FLOAT, rows);
  g.reduction(CUDNN_REDUCE_TENSOR_MAX, scores, row_max);
  cudnnBackendDescriptor_t shifted = g.binary(CUDNN_POINTWISE_SUB, scores, row_max, all);
  cudnnBackendDescriptor_t exps = g.unary(CUDNN_POINTWISE_EXP, shifted, all);
  cudnnBackendDescriptor_t row_sum = g.virtual_tensor(CUDNN_DATA_FLOAT, rows);
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, exps, row_sum);
  cudnnBackendDescriptor_t log_sum = g.unary(CUDNN_POINTWISE_LOG, row_sum, rows);
  g.pointwise(CUDNN_POINTWISE_ADD, CUDNN_DATA_FLOAT, row_max, log_sum, nullptr, stats);
  // P·V takes P in the IO type (cuDNN's requirement on the second matmul's A).
  cudnnBackendDescriptor_t probs = g.binary(CUDNN_POINTWISE_DIV, exps, row_sum, all, CUDNN_DATA_BFLOAT16);
  g.matmul(probs, v, o);
}

// The backward graph (header comment): Q, K, V, O, dO, dQ, dK, dV in bf16 with the caller's
// strides; Stats and the row sums of dO ⊙ O in f32.
void build_backward(GraphBuilder& g, const GraphSpec& s) {
  cudnnBackendDescriptor_t q = g.real(kQ, CUDNN_DATA_BFLOAT16, s.q);
  cudnnBackendDescriptor_t kt = g.real(kK, CUDNN_DATA_BFLOAT16, transposed(s.k));
  cudnnBackendDescriptor_t vt = g.real(kV, CUDNN_DATA_BFLOAT16, transposed(s.v));
  cudnnBackendDescriptor_t o = g.real(kO, CUDNN_DATA_BFLOAT16, s.o);
  cudnnBackendDescriptor_t d_o = g.real(kDO, CUDNN_DATA_BFLOAT16, s.d_o);
  cudnnBackendDescriptor_t stats = g.real(kStats, CUDNN_DATA_FLOAT, s.rows());
  cudnnBackendDescriptor_t dq = g.real(kDQ, CUDNN_DATA_BFLOAT16, s.dq);
  cudnnBackendDescriptor_t dk = g.real(kDK, CUDNN_DATA_BFLOAT16, s.dk);
  cudnnBackendDescriptor_t dv = g.real(kDV, CUDNN_DATA_BFLOAT16, s.dv);
  cudnnBackendDescriptor_t scale = g.scalar(kScale, CUDNN_DATA_FLOAT);
  const Layout all = s.scores(), rows = s.rows();

  // δ = rowsum(dO ⊙ O) · 1: a real f32 tensor, which cuDNN 9's kernels read from memory (the 8.9
  // lowering kept it virtual).
  cudnnBackendDescriptor_t do_o = g.binary(CUDNN_POINTWISE_MUL, d_o, o, dense({s.B, s.H, s.Tq, s.D}));
  cudnnBackendDescriptor_t delta_sum = g.virtual_tensor(CUDNN_DATA_FLOAT, rows);
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, do_o, delta_sum);
  cudnnBackendDescriptor_t delta = g.real(kRowSums, CUDNN_DATA_FLOAT, rows);
  g.pointwise(CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, delta_sum, g.scalar(kOne, CUDNN_DATA_FLOAT), nullptr, delta);

  // P = exp(S − Stats), the mask applied after the subtraction; dV = Pᵀ·dO
  cudnnBackendDescriptor_t shifted =
      g.binary(CUDNN_POINTWISE_SUB, scaled_scores(g, s, q, kt, scale), stats, all);
  if (s.causal) shifted = causal_mask(g, s, shifted);
  cudnnBackendDescriptor_t probs = g.unary(CUDNN_POINTWISE_EXP, shifted, all);
  cudnnBackendDescriptor_t probs_t = g.virtual_tensor(CUDNN_DATA_BFLOAT16, s.scores_transposed());
  g.reshape(probs, probs_t);
  g.matmul(probs_t, d_o, dv);

  // dS = (dO·Vᵀ − δ) ⊙ P · scale; dK = dSᵀ·Q
  cudnnBackendDescriptor_t dp = g.virtual_tensor(CUDNN_DATA_FLOAT, all);
  g.matmul(d_o, vt, dp);
  cudnnBackendDescriptor_t ds = g.binary(
      CUDNN_POINTWISE_MUL, g.binary(CUDNN_POINTWISE_MUL, g.binary(CUDNN_POINTWISE_SUB, dp, delta, all), probs, all),
      scale, all);
  cudnnBackendDescriptor_t ds_t = g.virtual_tensor(CUDNN_DATA_BFLOAT16, s.scores_transposed());
  g.reshape(ds, ds_t);
  g.matmul(ds_t, q, dk);

  // dQ = dS·K, K being the input Kᵀ seen back in its stored layout; dQ written directly (no f32
  // accumulator: the deterministic lowering).
  cudnnBackendDescriptor_t k = g.virtual_tensor(CUDNN_DATA_BFLOAT16, s.k);
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

// Whether cuDNN marks the engine of `config` non-deterministic.
bool is_nondeterministic(GraphBuilder& g, cudnnBackendDescriptor_t config) {
  cudnnBackendDescriptor_t engine = g.make(CUDNN_BACKEND_ENGINE_DESCRIPTOR).get();
  int64_t count = 0;
  CUDNN_CHECK(cudnnBackendGetAttribute(config, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &count,
                                       &engine));
  std::array<cudnnBackendNumericalNote_t, CUDNN_NUMERICAL_NOTE_TYPE_COUNT> notes{};
  CUDNN_CHECK(cudnnBackendGetAttribute(engine, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                                       int64_t(notes.size()), &count, notes.data()));
  return std::find(notes.begin(), notes.begin() + count, CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC) !=
         notes.begin() + count;
}

// The first deterministic engine configuration, in heuristic order (mode A, then the fallback
// list), whose plan finalises; throws naming the last failure if none does.
void finalize_plan(GraphBuilder& g, cudnnBackendDescriptor_t graph, cudnnHandle_t handle, Plan& plan) {
  std::string last_error = "no engine configuration";
  int64_t skipped_nondeterministic = 0;
  for (const cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
    Descriptor& heuristics = g.make(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    heuristics.set_descriptor(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph);
    heuristics.set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
    heuristics.finalize();
    int64_t count = 0;
    CUDNN_CHECK(cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, nullptr));
    std::vector<cudnnBackendDescriptor_t> configs;
    for (int64_t i = 0; i < count; ++i) configs.push_back(g.make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR).get());
    CUDNN_CHECK(cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &count, configs.data()));
    for (int64_t i = 0; i < count; ++i) {
      if (is_nondeterministic(g, configs[size_t(i)])) {
        ++skipped_nondeterministic;
        continue;
      }
      Descriptor& candidate = g.make(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
      try {
        candidate.set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
        candidate.set_descriptor(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, configs[size_t(i)]);
        candidate.finalize();
      } catch (const engine::Error& e) {
        last_error = e.what();
        continue;
      }
      CUDNN_CHECK(cudnnBackendGetAttribute(candidate.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                           CUDNN_TYPE_INT64, 1, nullptr, &plan.workspace_bytes));
      plan.plan = candidate.get();
      return;
    }
  }
  throw engine::Error(engine::detail::concat("cuDNN attention: no deterministic engine configuration finalises a ",
                                             "plan (", skipped_nondeterministic,
                                             " non-deterministic ones skipped); last: ", last_error));
}

struct State {
  std::mutex mutex;
  cudnnHandle_t handle = nullptr;
  CudnnAttentionStatus status;
  std::map<std::vector<int64_t>, std::unique_ptr<Plan>> plans;
  std::map<std::vector<int64_t>, std::string> refusals;  // specs cuDNN has no plan for, and why
};

// Never destroyed: cuDNN and the CUDA context may be gone by the time static destructors run.
State& state() {
  static State* const instance = new State;
  return *instance;
}

std::string describe(const GraphSpec& s) {
  return engine::detail::concat(s.backward ? "backward" : "forward", " B=", s.B, " H=", s.H, " Tq=", s.Tq, " Tk=", s.Tk,
                                " D=", s.D, s.causal ? " causal" : "", s.alibi ? " ALiBi" : "");
}

// The cached plan for a spec, built at first use; throws (the same reason at every call) when cuDNN
// has none. Caller holds the state's mutex.
const Plan& plan_for(State& st, const GraphSpec& spec) {
  const std::vector<int64_t> key = spec.key();
  if (auto found = st.plans.find(key); found != st.plans.end()) return *found->second;
  if (auto refused = st.refusals.find(key); refused != st.refusals.end()) throw engine::Error(refused->second);
  auto plan = std::make_unique<Plan>();
  try {
    GraphBuilder g;
    if (spec.backward)
      build_backward(g, spec);
    else
      build_forward(g, spec);
    finalize_plan(g, g.finalize_graph(st.handle), st.handle, *plan);
    plan->descriptors = g.release();
  } catch (const engine::Error& e) {
    const std::string reason = "cuDNN attention has no plan for " + describe(spec) + ": " + e.what();
    st.refusals.emplace(key, reason);
    throw engine::Error(reason);
  }
  return *st.plans.emplace(key, std::move(plan)).first->second;
}

// ---- bf16 copies in the callers' layouts ----

// Where each f32 view sits in its bf16 copy: the copy holds the whole span of storage the views
// address, so every view keeps its strides (q, k, v of one fused qkv buffer share one copy).
struct Bf16Copies {
  std::vector<Tensor> buffers;  // bf16, alive until the graph has run
  std::vector<uint16_t*> views;  // per view given: its first element in the copy
};

// The element span [first, last] of storage that a view addresses.
std::pair<int64_t, int64_t> span(const Tensor& x) {
  int64_t last = x.offset();
  for (int64_t i = 0; i < x.dim(); ++i) last += (x.size(i) - 1) * x.strides()[size_t(i)];
  return {x.offset(), last};
}

const float* storage_base(const Tensor& x) { return x.data<float>() - x.offset(); }

// bf16 copies of the f32 views `xs` (their spans of storage, rounded to nearest even). Views of one
// storage whose offsets differ by a multiple of 8 elements share one copy, so each stays 16-byte
// aligned in it.
Bf16Copies bf16_copies(const std::vector<Tensor>& xs, cudaStream_t stream) {
  Bf16Copies out;
  out.views.resize(xs.size());
  std::vector<bool> done(xs.size(), false);
  for (size_t i = 0; i < xs.size(); ++i) {
    if (done[i]) continue;
    std::vector<size_t> group;
    for (size_t j = i; j < xs.size(); ++j)
      if (!done[j] && xs[j].storage() == xs[i].storage() && (xs[j].offset() - xs[i].offset()) % 8 == 0) {
        group.push_back(j);
        done[j] = true;
      }
    int64_t first = std::numeric_limits<int64_t>::max(), last = 0;
    for (size_t j : group) {
      const auto [a, b] = span(xs[j]);
      first = std::min(first, a);
      last = std::max(last, b);
    }
    Tensor buffer = Tensor::empty({last - first + 1}, Dtype::bf16, current_gpu());
    uint16_t* data = static_cast<uint16_t*>(buffer.raw_data());
    f32_to_bf16(data, storage_base(xs[i]) + first, last - first + 1, stream);
    for (size_t j : group) out.views[j] = data + (xs[j].offset() - first);
    out.buffers.push_back(std::move(buffer));
  }
  return out;
}

// A bf16 buffer for a result that will be widened into the f32 view `x`, whose span must be dense
// (the results are views of buffers the caller allocated for them).
struct Bf16Result {
  Tensor buffer;
  uint16_t* view = nullptr;
};
Bf16Result bf16_result(const Tensor& x) {
  const auto [first, last] = span(x);
  ENGINE_CHECK(last - first + 1 == x.numel(), "cuDNN attention: a result must be a view of a dense buffer, got ",
               x.describe());
  Bf16Result r{Tensor::empty({x.numel()}, Dtype::bf16, current_gpu())};
  r.view = static_cast<uint16_t*>(r.buffer.raw_data()) + (x.offset() - first);
  return r;
}
void widen_into(const Tensor& x, const Bf16Result& r, cudaStream_t stream) {
  const auto [first, last] = span(x);
  bf16_to_f32(const_cast<float*>(storage_base(x)) + first, static_cast<const uint16_t*>(r.buffer.raw_data()),
              last - first + 1, stream);
}

// Runs `plan` with the given tensors (uid → device pointer, or host pointer for by-value scalars).
void execute(State& st, const Plan& plan, const std::map<int64_t, void*>& tensors, cudaStream_t stream) {
  Tensor workspace;
  void* workspace_ptr = nullptr;
  if (plan.workspace_bytes > 0) {
    workspace = Tensor::empty({(plan.workspace_bytes + 1) / 2}, Dtype::bf16, current_gpu());
    workspace_ptr = workspace.raw_data();
  }
  std::vector<int64_t> uids;
  std::vector<void*> pointers;
  for (const auto& [uid, ptr] : tensors) {
    uids.push_back(uid);
    pointers.push_back(ptr);
  }
  Descriptor pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, int64_t(uids.size()), uids.data());
  pack.set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, int64_t(pointers.size()), pointers.data());
  pack.set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace_ptr);
  pack.finalize();
  CUDNN_CHECK(cudnnSetStream(st.handle, stream));
  CUDNN_CHECK(cudnnBackendExecute(st.handle, plan.plan, pack.get()));
}

// The host scalars a graph may read (they must outlive the execution).
struct Scalars {
  float scale, mask_fill = -std::numeric_limits<float>::infinity(), one = 1.0f;
  int32_t key_length, query_length;
};

void add_shared(std::map<int64_t, void*>& tensors, const GraphSpec& s, Scalars& scalars, const Tensor& alibi_slopes) {
  tensors[kScale] = &scalars.scale;
  if (s.causal) tensors[kMaskFill] = &scalars.mask_fill;
  if (s.causal && s.Tq != s.Tk) {
    tensors[kKeyLength] = &scalars.key_length;
    tensors[kQueryLength] = &scalars.query_length;
  }
  if (s.alibi) tensors[kAlibiSlopes] = alibi_slopes.raw_data();
}

// `x` as cuDNN reads it: as it lies when its head rows are contiguous and its other strides keep
// every row 16-byte aligned in bf16 (multiples of 8 elements), else a dense copy.
Tensor cudnn_readable(const Tensor& x) {
  const auto& st = x.strides();
  return st[3] == 1 && st[0] % 8 == 0 && st[1] % 8 == 0 && st[2] % 8 == 0 ? x : x.contiguous();
}

GraphSpec spec_of(bool backward, const AttentionSizes& sz, const AttentionBias& bias, const Tensor& q, const Tensor& k,
                  const Tensor& v, const Tensor& o) {
  GraphSpec s;
  s.backward = backward;
  s.B = sz.batch, s.H = sz.heads, s.Tq = sz.query_len, s.Tk = sz.key_len, s.D = sz.qk_dim;
  s.causal = bias.causal;
  s.alibi = bias.alibi_slopes != nullptr;
  s.q = layout_of(q), s.k = layout_of(k), s.v = layout_of(v), s.o = layout_of(o);
  return s;
}

// The forward through cuDNN. Caller holds the mutex.
void run_forward(State& st, const Tensor& out, const Tensor& lse, const Tensor& q_view, const Tensor& k_view,
                 const Tensor& v_view, const Tensor& alibi_slopes, const AttentionSizes& sz, const AttentionBias& bias,
                 cudaStream_t stream) {
  const Tensor q = cudnn_readable(q_view), k = cudnn_readable(k_view), v = cudnn_readable(v_view);
  const GraphSpec spec = spec_of(false, sz, bias, q, k, v, out);
  const Plan& plan = plan_for(st, spec);
  const Bf16Copies inputs = bf16_copies({q, k, v}, stream);
  const Bf16Result o16 = bf16_result(out);
  Scalars scalars{float(bias.scale), -std::numeric_limits<float>::infinity(), 1.0f, int32_t(sz.key_len),
                  int32_t(sz.query_len)};
  std::map<int64_t, void*> tensors = {{kQ, inputs.views[0]}, {kK, inputs.views[1]}, {kV, inputs.views[2]},
                                      {kO, o16.view}, {kStats, lse.raw_data()}};
  add_shared(tensors, spec, scalars, alibi_slopes);
  execute(st, plan, tensors, stream);
  widen_into(out, o16, stream);
}

// The backward through cuDNN. Caller holds the mutex.
void run_backward(State& st, const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout_view,
                  const Tensor& q_view, const Tensor& k_view, const Tensor& v_view, const Tensor& out_view,
                  const Tensor& lse, const Tensor& alibi_slopes, const AttentionSizes& sz, const AttentionBias& bias,
                  cudaStream_t stream) {
  const Tensor q = cudnn_readable(q_view), k = cudnn_readable(k_view), v = cudnn_readable(v_view),
               out = cudnn_readable(out_view), dout = cudnn_readable(dout_view);
  GraphSpec spec = spec_of(true, sz, bias, q, k, v, out);
  spec.d_o = layout_of(dout), spec.dq = layout_of(dq), spec.dk = layout_of(dk), spec.dv = layout_of(dv);
  const Plan& plan = plan_for(st, spec);
  const Bf16Copies inputs = bf16_copies({q, k, v, out, dout}, stream);
  const Bf16Result dq16 = bf16_result(dq), dk16 = bf16_result(dk), dv16 = bf16_result(dv);
  const Tensor row_sums = Tensor::empty({sz.batch, sz.heads, sz.query_len}, Dtype::f32, current_gpu());
  Scalars scalars{float(bias.scale), -std::numeric_limits<float>::infinity(), 1.0f, int32_t(sz.key_len),
                  int32_t(sz.query_len)};
  std::map<int64_t, void*> tensors = {
      {kQ, inputs.views[0]},  {kK, inputs.views[1]},  {kV, inputs.views[2]},  {kO, inputs.views[3]},
      {kDO, inputs.views[4]}, {kStats, lse.raw_data()}, {kDQ, dq16.view},     {kDK, dk16.view},
      {kDV, dv16.view},       {kRowSums, row_sums.raw_data()}, {kOne, &scalars.one}};
  add_shared(tensors, spec, scalars, alibi_slopes);
  execute(st, plan, tensors, stream);
  widen_into(dq, dq16, stream);
  widen_into(dk, dk16, stream);
  widen_into(dv, dv16, stream);
}

// ---- Validation against the hand-written kernel ----

// max |got − ref| / max |ref| over two device f32 tensors of one shape (∞ if NaNs differ).
double relative_error(const Tensor& got, const Tensor& ref) {
  const std::vector<float> a = got.to(Device::cpu()).contiguous().to_vector<float>();
  const std::vector<float> b = ref.to(Device::cpu()).contiguous().to_vector<float>();
  double max_err = 0.0, max_ref = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) return std::numeric_limits<double>::infinity();
    max_err = std::max(max_err, std::fabs(double(a[i]) - double(b[i])));
    max_ref = std::max(max_ref, std::fabs(double(b[i])));
  }
  return max_ref > 0.0 ? max_err / max_ref : max_err;
}

// A random device tensor whose values are bf16-exact, so that both paths read the same inputs.
Tensor random_bf16_exact(const engine::Shape& shape, engine::Generator& gen) {
  return Tensor::randn(shape, gen).to(Dtype::bf16).to(Dtype::f32).to(current_gpu());
}

struct ValidationCase {
  AttentionSizes sizes;
  bool causal;
  bool alibi;
};

// Runs one case through cuDNN and the kernel; returns {forward error, backward error}, or throws.
std::pair<double, double> compare_with_kernel(State& st, const ValidationCase& c, engine::Generator& gen,
                                              cudaStream_t stream) {
  const AttentionSizes& sz = c.sizes;
  std::vector<double> slopes64;
  for (int64_t h = 0; h < sz.heads; ++h) slopes64.push_back(-std::pow(2.0, -double(h + 1)));
  const Tensor slopes_f64 = Tensor::from_vector(slopes64, {sz.heads}, Dtype::f64, current_gpu());
  const Tensor slopes_f32 = slopes_f64.to(Dtype::f32);
  AttentionBias bias{1.0 / std::sqrt(double(sz.qk_dim)), c.causal, nullptr, nullptr, {}};
  if (c.alibi) bias.alibi_slopes = slopes_f64.data<double>();
  const engine::Shape q_shape{sz.batch, sz.heads, sz.query_len, sz.qk_dim};
  const engine::Shape kv_shape{sz.batch, sz.heads, sz.key_len, sz.qk_dim};
  const engine::Shape row_shape{sz.batch, sz.heads, sz.query_len};
  const Tensor q = random_bf16_exact(q_shape, gen), k = random_bf16_exact(kv_shape, gen),
               v = random_bf16_exact(kv_shape, gen), dout = random_bf16_exact(q_shape, gen);
  auto make = [](const engine::Shape& shape) { return Tensor::full(shape, NAN, Dtype::f32, current_gpu()); };

  Tensor out_c = make(q_shape), lse_c = make(row_shape), dq_c = make(q_shape), dk_c = make(kv_shape),
         dv_c = make(kv_shape);
  const Tensor slopes = c.alibi ? slopes_f32 : Tensor();
  run_forward(st, out_c, lse_c, q, k, v, slopes, sz, bias, stream);
  run_backward(st, dq_c, dk_c, dv_c, dout, q, k, v, out_c, lse_c, slopes, sz, bias, stream);

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
}

// At first use: creates the handle and checks cuDNN against the kernel on a non-causal case with
// Tq ≠ Tk, a causal one and a causal one with ALiBi, with lengths that are not multiples of cuDNN's
// 64-row tiles. Caller holds the mutex. Throws the reason when the path may not be used.
void ensure_validated(State& st, cudaStream_t stream) {
  if (st.status.state == CudnnAttentionState::validated) return;
  if (st.status.state == CudnnAttentionState::disabled) throw engine::Error(st.status.reason);
  try {
    CUDNN_CHECK(cudnnCreate(&st.handle));
    engine::Generator gen(0x5eed);
    double forward = 0.0, backward = 0.0;
    for (const ValidationCase& c : {ValidationCase{{2, 2, 37, 70, 64, 64}, false, false},
                                    ValidationCase{{1, 3, 70, 70, 32, 32}, true, false},
                                    ValidationCase{{1, 2, 45, 45, 16, 16}, true, true}}) {
      const auto [f, b] = compare_with_kernel(st, c, gen, stream);
      forward = std::max(forward, f);
      backward = std::max(backward, b);
    }
    st.status.forward_error = forward;
    st.status.backward_error = backward;
    if (!(forward < kCudnnForwardTolerance && backward < kCudnnBackwardTolerance))
      throw engine::Error(engine::detail::concat(
          "cuDNN attention disagrees with the hand-written kernel at its first-use validation: relative error "
          "forward ", forward, " (tolerance ", kCudnnForwardTolerance, "), backward ", backward, " (tolerance ",
          kCudnnBackwardTolerance, ")"));
    st.status.state = CudnnAttentionState::validated;
  } catch (const engine::Error& e) {
    disable(st, e.what());
    throw;
  }
}

}  // namespace

CudnnAttentionStatus cudnn_attention_status() {
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mutex);
  return st.status;
}

std::string cudnn_attention_unsupported(const AttentionSizes& sizes, const AttentionBias& bias) {
  const int64_t D = sizes.qk_dim;
  if (bias.key_keep) return "a key mask";
  if (bias.dropout.p != 0.0) return "dropout on the probabilities (the engine's Philox mask, which cuDNN cannot draw)";
  if (bias.score_bias) return "a score bias";
  if (sizes.value_dim != D) return "a q·k width Dk ≠ the value width Dv";
  if (bias.alibi_slopes && !(bias.causal && sizes.query_len == sizes.key_len))
    return "ALiBi without a causal mask over equal query and key lengths";
  if (bias.causal && sizes.query_len > sizes.key_len) return "a causal mask with more queries than keys";
  if (D % 8 != 0 || D > 128) return engine::detail::concat("head size ", D, " (cuDNN takes multiples of 8 up to 128)");
  return "";
}

void cudnn_attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                             const Tensor& alibi_slopes, const AttentionSizes& sizes, const AttentionBias& bias,
                             cudaStream_t stream) {
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mutex);
  ensure_validated(st, stream);
  run_forward(st, out, lse, q, k, v, alibi_slopes, sizes, bias, stream);
}

void cudnn_attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout,
                              const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                              const Tensor& alibi_slopes, const AttentionSizes& sizes, const AttentionBias& bias,
                              cudaStream_t stream) {
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mutex);
  ensure_validated(st, stream);
  run_backward(st, dq, dk, dv, dout, q, k, v, out, lse, alibi_slopes, sizes, bias, stream);
}

}  // namespace ops::cuda
