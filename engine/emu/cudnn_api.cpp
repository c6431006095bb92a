// The emulated cuDNN backend API (engine/emu/cudnn_api.h): descriptors as one tagged struct holding
// the attributes as set, finalize checks per descriptor type, heuristics that answer only the SDPA
// graphs of engine/emu/cudnn_sdpa.h, and an execution that binds the variant pack and evaluates the
// graph on the host. Failures return cuDNN's status codes with a message for cudnnGetLastErrorString.
#include "engine/emu/cudnn_api.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "engine/emu/cudnn_sdpa.h"
#include "engine/emu/device_memory.h"
#include "engine/emu/devices.h"
#include "engine/error.h"

struct cudnnContext {
  int device = 0;  // current when the handle was made: its calls must run there
  cudaStream_t stream = nullptr;
};

namespace {

using engine::emu::detail::Operation;
using engine::emu::detail::OperationKind;
using engine::emu::detail::SdpaDirection;
using engine::emu::detail::TensorDesc;

thread_local std::string last_error;

// A failure inside the emulation, turned into a status at the API boundary.
struct Failure {
  cudnnStatus_t status;
  std::string message;
};

[[noreturn]] void fail(cudnnStatus_t status, const std::string& message) { throw Failure{status, message}; }

struct Attribute {
  cudnnBackendAttributeType_t type;
  int64_t count;
  std::vector<uint8_t> bytes;
};

// The engine configurations the heuristics offer for a recognised graph: the forward has one; the
// backward a non-deterministic one first (cuDNN ranks its dQ-atomics kernels first) and a
// deterministic one.
struct EngineChoice {
  SdpaDirection direction = SdpaDirection::forward;
  bool nondeterministic = false;
};

struct Descriptor {
  cudnnBackendDescriptorType_t type;
  bool finalized = false;
  std::map<int, Attribute> attributes;
  // What finalize derived, by type:
  TensorDesc tensor;             // TENSOR
  Operation operation;           // OPERATION_*
  std::vector<Operation> graph;  // OPERATIONGRAPH, EXECUTION_PLAN (the plan's copy)
  SdpaDirection direction = SdpaDirection::forward;
  std::string refusal;                // OPERATIONGRAPH: why no engine takes it; "" if one does
  std::vector<EngineChoice> engines;  // ENGINEHEUR
  EngineChoice engine;                // ENGINECFG, ENGINE, EXECUTION_PLAN
  int64_t workspace_bytes = 0;        // EXECUTION_PLAN
};

std::set<Descriptor*>& live_descriptors() {
  static std::set<Descriptor*> live;
  return live;
}

Descriptor& checked(cudnnBackendDescriptor_t d) {
  auto* desc = static_cast<Descriptor*>(d);
  if (!desc || !live_descriptors().count(desc)) fail(CUDNN_STATUS_BAD_PARAM, "not a live backend descriptor");
  return *desc;
}

size_t attribute_size(cudnnBackendAttributeType_t type) {
  switch (type) {
    case CUDNN_TYPE_HANDLE:
    case CUDNN_TYPE_VOID_PTR:
    case CUDNN_TYPE_BACKEND_DESCRIPTOR: return sizeof(void*);
    case CUDNN_TYPE_DATA_TYPE:
    case CUDNN_TYPE_HEUR_MODE:
    case CUDNN_TYPE_NUMERICAL_NOTE:
    case CUDNN_TYPE_POINTWISE_MODE:
    case CUDNN_TYPE_REDUCTION_OPERATOR_TYPE: return 4;
    case CUDNN_TYPE_BOOLEAN: return sizeof(bool);
    case CUDNN_TYPE_INT64:
    case CUDNN_TYPE_DOUBLE: return 8;
    case CUDNN_TYPE_FLOAT: return 4;
  }
  fail(CUDNN_STATUS_NOT_SUPPORTED, std::string("attribute type ") + std::to_string(int(type)) + " is not emulated");
}

// The settable attributes: (descriptor type, attribute) → the attribute type cuDNN requires.
cudnnBackendAttributeType_t settable_type(cudnnBackendDescriptorType_t on, cudnnBackendAttributeName_t name) {
  static const std::map<std::pair<int, int>, cudnnBackendAttributeType_t> table = {
      {{CUDNN_BACKEND_TENSOR_DESCRIPTOR, CUDNN_ATTR_TENSOR_DATA_TYPE}, CUDNN_TYPE_DATA_TYPE},
      {{CUDNN_BACKEND_TENSOR_DESCRIPTOR, CUDNN_ATTR_TENSOR_DIMENSIONS}, CUDNN_TYPE_INT64},
      {{CUDNN_BACKEND_TENSOR_DESCRIPTOR, CUDNN_ATTR_TENSOR_STRIDES}, CUDNN_TYPE_INT64},
      {{CUDNN_BACKEND_TENSOR_DESCRIPTOR, CUDNN_ATTR_TENSOR_UNIQUE_ID}, CUDNN_TYPE_INT64},
      {{CUDNN_BACKEND_TENSOR_DESCRIPTOR, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT}, CUDNN_TYPE_INT64},
      {{CUDNN_BACKEND_TENSOR_DESCRIPTOR, CUDNN_ATTR_TENSOR_IS_VIRTUAL}, CUDNN_TYPE_BOOLEAN},
      {{CUDNN_BACKEND_TENSOR_DESCRIPTOR, CUDNN_ATTR_TENSOR_IS_BY_VALUE}, CUDNN_TYPE_BOOLEAN},
      {{CUDNN_BACKEND_POINTWISE_DESCRIPTOR, CUDNN_ATTR_POINTWISE_MODE}, CUDNN_TYPE_POINTWISE_MODE},
      {{CUDNN_BACKEND_POINTWISE_DESCRIPTOR, CUDNN_ATTR_POINTWISE_MATH_PREC}, CUDNN_TYPE_DATA_TYPE},
      {{CUDNN_BACKEND_POINTWISE_DESCRIPTOR, CUDNN_ATTR_POINTWISE_AXIS}, CUDNN_TYPE_INT64},
      {{CUDNN_BACKEND_REDUCTION_DESCRIPTOR, CUDNN_ATTR_REDUCTION_OPERATOR}, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE},
      {{CUDNN_BACKEND_REDUCTION_DESCRIPTOR, CUDNN_ATTR_REDUCTION_COMP_TYPE}, CUDNN_TYPE_DATA_TYPE},
      {{CUDNN_BACKEND_MATMUL_DESCRIPTOR, CUDNN_ATTR_MATMUL_COMP_TYPE}, CUDNN_TYPE_DATA_TYPE},
      {{CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR},
       CUDNN_TYPE_BACKEND_DESCRIPTOR},
      {{CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, CUDNN_ATTR_OPERATION_POINTWISE_XDESC},
       CUDNN_TYPE_BACKEND_DESCRIPTOR},
      {{CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, CUDNN_ATTR_OPERATION_POINTWISE_BDESC},
       CUDNN_TYPE_BACKEND_DESCRIPTOR},
      {{CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, CUDNN_ATTR_OPERATION_POINTWISE_TDESC},
       CUDNN_TYPE_BACKEND_DESCRIPTOR},
      {{CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, CUDNN_ATTR_OPERATION_POINTWISE_YDESC},
       CUDNN_TYPE_BACKEND_DESCRIPTOR},
      {{CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, CUDNN_ATTR_OPERATION_REDUCTION_XDESC},
       CUDNN_TYPE_BACKEND_DESCRIPTOR},
      {{CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, CUDNN_ATTR_OPERATION_REDUCTION_YDESC},
       CUDNN_TYPE_BACKEND_DESCRIPTOR},
      {{CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, CUDNN_ATTR_OPERATION_REDUCTION_DESC},
       CUDNN_TYPE_BACKEND_DESCRIPTOR},
      {{CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, CUDNN_ATTR_OPERATION_MATMUL_ADESC}, CUDNN_TYPE_BACKEND_DESCRIPTOR},
      {{CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, CUDNN_ATTR_OPERATION_MATMUL_BDESC}, CUDNN_TYPE_BACKEND_DESCRIPTOR},
      {{CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, CUDNN_ATTR_OPERATION_MATMUL_CDESC}, CUDNN_TYPE_BACKEND_DESCRIPTOR},
      {{CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, CUDNN_ATTR_OPERATION_MATMUL_DESC}, CUDNN_TYPE_BACKEND_DESCRIPTOR},
      {{CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR, CUDNN_ATTR_OPERATION_RESHAPE_XDESC}, CUDNN_TYPE_BACKEND_DESCRIPTOR},
      {{CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR, CUDNN_ATTR_OPERATION_RESHAPE_YDESC}, CUDNN_TYPE_BACKEND_DESCRIPTOR},
      {{CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, CUDNN_ATTR_OPERATIONGRAPH_OPS}, CUDNN_TYPE_BACKEND_DESCRIPTOR},
      {{CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, CUDNN_ATTR_OPERATIONGRAPH_HANDLE}, CUDNN_TYPE_HANDLE},
      {{CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH}, CUDNN_TYPE_BACKEND_DESCRIPTOR},
      {{CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, CUDNN_ATTR_ENGINEHEUR_MODE}, CUDNN_TYPE_HEUR_MODE},
      {{CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, CUDNN_ATTR_EXECUTION_PLAN_HANDLE}, CUDNN_TYPE_HANDLE},
      {{CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG},
       CUDNN_TYPE_BACKEND_DESCRIPTOR},
      {{CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS}, CUDNN_TYPE_INT64},
      {{CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS}, CUDNN_TYPE_VOID_PTR},
      {{CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, CUDNN_ATTR_VARIANT_PACK_WORKSPACE}, CUDNN_TYPE_VOID_PTR},
  };
  auto found = table.find({int(on), int(name)});
  if (found == table.end())
    fail(CUDNN_STATUS_NOT_SUPPORTED, std::string("attribute ") + std::to_string(int(name)) + " of descriptor type " +
                                         std::to_string(int(on)) + " is not emulated");
  return found->second;
}

bool has(const Descriptor& d, cudnnBackendAttributeName_t name) { return d.attributes.count(int(name)) > 0; }

// The values of a required attribute.
template <typename T>
std::vector<T> values(const Descriptor& d, cudnnBackendAttributeName_t name) {
  auto found = d.attributes.find(int(name));
  if (found == d.attributes.end())
    fail(CUDNN_STATUS_BAD_PARAM, std::string("descriptor type ") + std::to_string(int(d.type)) +
                                     " is finalized without attribute " + std::to_string(int(name)));
  std::vector<T> out(size_t(found->second.count));
  std::memcpy(out.data(), found->second.bytes.data(), found->second.bytes.size());
  return out;
}
template <typename T>
T value(const Descriptor& d, cudnnBackendAttributeName_t name) {
  const std::vector<T> v = values<T>(d, name);
  if (v.size() != 1)
    fail(CUDNN_STATUS_BAD_PARAM, std::string("attribute ") + std::to_string(int(name)) + " takes one value");
  return v[0];
}

// A finalised descriptor of `type` named by an attribute.
Descriptor& linked(const Descriptor& d, cudnnBackendAttributeName_t name, cudnnBackendDescriptorType_t type) {
  Descriptor& target = checked(value<cudnnBackendDescriptor_t>(d, name));
  if (target.type != type || !target.finalized)
    fail(CUDNN_STATUS_BAD_PARAM, std::string("attribute ") + std::to_string(int(name)) +
                                     " must name a finalized descriptor of type " + std::to_string(int(type)));
  return target;
}
// A boolean attribute, false when unset.
bool flag(const Descriptor& d, cudnnBackendAttributeName_t name) {
  auto found = d.attributes.find(int(name));
  return found != d.attributes.end() && found->second.count == 1 && found->second.bytes[0] != 0;
}

const TensorDesc& linked_tensor(const Descriptor& d, cudnnBackendAttributeName_t name) {
  return linked(d, name, CUDNN_BACKEND_TENSOR_DESCRIPTOR).tensor;
}

void finalize_tensor(Descriptor& d) {
  TensorDesc& t = d.tensor;
  t.type = value<cudnnDataType_t>(d, CUDNN_ATTR_TENSOR_DATA_TYPE);
  t.dims = values<int64_t>(d, CUDNN_ATTR_TENSOR_DIMENSIONS);
  t.strides = values<int64_t>(d, CUDNN_ATTR_TENSOR_STRIDES);
  t.uid = value<int64_t>(d, CUDNN_ATTR_TENSOR_UNIQUE_ID);
  t.alignment = value<int64_t>(d, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT);
  t.is_virtual = flag(d, CUDNN_ATTR_TENSOR_IS_VIRTUAL);
  t.by_value = flag(d, CUDNN_ATTR_TENSOR_IS_BY_VALUE);
  if (t.dims.size() != t.strides.size() || t.dims.empty() || t.dims.size() > 8)
    fail(CUDNN_STATUS_BAD_PARAM,
         std::string("tensor uid ") + std::to_string(t.uid) + ": dims and strides must have one rank (1 to 8)");
  for (size_t i = 0; i < t.dims.size(); ++i)
    if (t.dims[i] < 1 || t.strides[i] < 1)
      fail(CUDNN_STATUS_BAD_PARAM,
           std::string("tensor uid ") + std::to_string(t.uid) + ": dims and strides must be positive");
  if (t.alignment < 1 || (t.alignment & (t.alignment - 1)) != 0)
    fail(CUDNN_STATUS_BAD_PARAM,
         std::string("tensor uid ") + std::to_string(t.uid) + ": byte alignment must be a power of two");
  if (t.is_virtual && t.by_value)
    fail(CUDNN_STATUS_BAD_PARAM,
         std::string("tensor uid ") + std::to_string(t.uid) + " cannot be both virtual and by value");
  engine::emu::detail::element_size(t.type);  // throws for a type the evaluation cannot hold
}

// Whether `from` broadcasts to `to` (each axis equal or 1).
bool broadcasts(const TensorDesc& from, const TensorDesc& to) {
  if (from.dims.size() != to.dims.size()) return false;
  for (size_t i = 0; i < from.dims.size(); ++i)
    if (from.dims[i] != 1 && from.dims[i] != to.dims[i]) return false;
  return true;
}

void finalize_operation(Descriptor& d) {
  Operation& op = d.operation;
  auto shape_error = [&](const char* what) {
    fail(CUDNN_STATUS_BAD_PARAM, std::string("operation type ") + std::to_string(int(d.type)) + ": " + what);
  };
  switch (d.type) {
    case CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR: {
      const Descriptor& pw =
          linked(d, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
      op.kind = OperationKind::pointwise;
      op.mode = value<cudnnPointwiseMode_t>(pw, CUDNN_ATTR_POINTWISE_MODE);
      op.x = linked_tensor(d, CUDNN_ATTR_OPERATION_POINTWISE_XDESC);
      op.y = linked_tensor(d, CUDNN_ATTR_OPERATION_POINTWISE_YDESC);
      op.has_b = has(d, CUDNN_ATTR_OPERATION_POINTWISE_BDESC);
      op.has_t = has(d, CUDNN_ATTR_OPERATION_POINTWISE_TDESC);
      if (op.has_b) op.b = linked_tensor(d, CUDNN_ATTR_OPERATION_POINTWISE_BDESC);
      if (op.has_t) op.t = linked_tensor(d, CUDNN_ATTR_OPERATION_POINTWISE_TDESC);
      const bool unary = op.mode == CUDNN_POINTWISE_EXP || op.mode == CUDNN_POINTWISE_LOG ||
                         op.mode == CUDNN_POINTWISE_IDENTITY || op.mode == CUDNN_POINTWISE_GEN_INDEX;
      if (unary == op.has_b) shape_error(unary ? "a unary mode takes no B operand" : "a binary mode needs a B operand");
      if ((op.mode == CUDNN_POINTWISE_BINARY_SELECT) != op.has_t) shape_error("only BINARY_SELECT takes a T operand");
      if (op.mode == CUDNN_POINTWISE_GEN_INDEX) {
        op.axis = value<int64_t>(pw, CUDNN_ATTR_POINTWISE_AXIS);
        if (op.axis < 0 || op.axis >= int64_t(op.y.dims.size()))
          shape_error("GEN_INDEX axis outside the output's rank");
      }
      if (!broadcasts(op.x, op.y) || (op.has_b && !broadcasts(op.b, op.y)) || (op.has_t && !broadcasts(op.t, op.y)))
        shape_error("an operand does not broadcast to the output's dims");
      break;
    }
    case CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR: {
      const Descriptor& red = linked(d, CUDNN_ATTR_OPERATION_REDUCTION_DESC, CUDNN_BACKEND_REDUCTION_DESCRIPTOR);
      op.kind = OperationKind::reduction;
      op.reduce = value<cudnnReduceTensorOp_t>(red, CUDNN_ATTR_REDUCTION_OPERATOR);
      if (op.reduce != CUDNN_REDUCE_TENSOR_ADD && op.reduce != CUDNN_REDUCE_TENSOR_MAX)
        fail(CUDNN_STATUS_NOT_SUPPORTED,
             std::string("reduction operator ") + std::to_string(int(op.reduce)) + " is not emulated");
      op.x = linked_tensor(d, CUDNN_ATTR_OPERATION_REDUCTION_XDESC);
      op.y = linked_tensor(d, CUDNN_ATTR_OPERATION_REDUCTION_YDESC);
      if (!broadcasts(op.y, op.x)) shape_error("the output's dims must be the input's with reduced axes set to 1");
      break;
    }
    case CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR: {
      linked(d, CUDNN_ATTR_OPERATION_MATMUL_DESC, CUDNN_BACKEND_MATMUL_DESCRIPTOR);
      op.kind = OperationKind::matmul;
      op.x = linked_tensor(d, CUDNN_ATTR_OPERATION_MATMUL_ADESC);
      op.b = linked_tensor(d, CUDNN_ATTR_OPERATION_MATMUL_BDESC);
      op.y = linked_tensor(d, CUDNN_ATTR_OPERATION_MATMUL_CDESC);
      op.has_b = true;
      const size_t r = op.y.dims.size();
      if (r < 2 || op.x.dims.size() != r || op.b.dims.size() != r || op.x.dims[r - 2] != op.y.dims[r - 2] ||
          op.b.dims[r - 1] != op.y.dims[r - 1] || op.x.dims[r - 1] != op.b.dims[r - 2])
        shape_error("A (…, M, K) · B (…, K, N) must give C (…, M, N)");
      for (size_t i = 0; i + 2 < r; ++i)
        if ((op.x.dims[i] != 1 && op.x.dims[i] != op.y.dims[i]) || (op.b.dims[i] != 1 && op.b.dims[i] != op.y.dims[i]))
          shape_error("A's and B's batch axes must be C's or 1");
      break;
    }
    case CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR: {
      op.kind = OperationKind::reshape;
      op.x = linked_tensor(d, CUDNN_ATTR_OPERATION_RESHAPE_XDESC);
      op.y = linked_tensor(d, CUDNN_ATTR_OPERATION_RESHAPE_YDESC);
      int64_t nx = 1, ny = 1;
      for (int64_t v : op.x.dims) nx *= v;
      for (int64_t v : op.y.dims) ny *= v;
      if (nx != ny || !op.y.is_virtual) shape_error("a reshape keeps the element count and gives a virtual tensor");
      break;
    }
    default: break;
  }
}

// Dataflow checks of a graph: each tensor produced once, every virtual operand produced before its
// use, one descriptor per unique id.
void finalize_graph(Descriptor& d) {
  d.graph.clear();
  value<cudnnHandle_t>(d, CUDNN_ATTR_OPERATIONGRAPH_HANDLE);
  for (cudnnBackendDescriptor_t op_desc : values<cudnnBackendDescriptor_t>(d, CUDNN_ATTR_OPERATIONGRAPH_OPS)) {
    Descriptor& op = checked(op_desc);
    if (!op.finalized) fail(CUDNN_STATUS_BAD_PARAM, "an operation of the graph is not finalized");
    d.graph.push_back(op.operation);
  }
  std::map<int64_t, const TensorDesc*> by_uid;
  std::set<int64_t> produced;
  auto register_tensor = [&](const TensorDesc& t) {
    auto [it, inserted] = by_uid.emplace(t.uid, &t);
    if (!inserted && (it->second->dims != t.dims || it->second->strides != t.strides || it->second->type != t.type ||
                      it->second->is_virtual != t.is_virtual))
      fail(CUDNN_STATUS_BAD_PARAM, std::string("two different tensors share unique id ") + std::to_string(t.uid));
  };
  for (const Operation& op : d.graph) {
    for (const TensorDesc* in : {&op.x, op.has_b ? &op.b : nullptr, op.has_t ? &op.t : nullptr}) {
      if (!in) continue;
      register_tensor(*in);
      if (in->is_virtual && !produced.count(in->uid))
        fail(CUDNN_STATUS_BAD_PARAM,
             std::string("virtual tensor uid ") + std::to_string(in->uid) + " is read before any operation writes it");
    }
    register_tensor(op.y);
    if (op.y.by_value || !produced.insert(op.y.uid).second)
      fail(CUDNN_STATUS_BAD_PARAM,
           std::string("tensor uid ") + std::to_string(op.y.uid) + " is written twice or is by value");
  }
  d.refusal = engine::emu::detail::recognise_sdpa(d.graph, d.direction);
}

std::string refusal_for_tests;  // engine::emu::set_cudnn_refusal

void finalize_heuristics(Descriptor& d) {
  const Descriptor& graph = linked(d, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  value<cudnnBackendHeurMode_t>(d, CUDNN_ATTR_ENGINEHEUR_MODE);
  if (!refusal_for_tests.empty()) fail(CUDNN_STATUS_NOT_SUPPORTED, refusal_for_tests);
  if (!graph.refusal.empty()) fail(CUDNN_STATUS_NOT_SUPPORTED, graph.refusal);
  d.graph = graph.graph;
  d.direction = graph.direction;
  if (graph.direction == SdpaDirection::forward)
    d.engines = {{SdpaDirection::forward, false}};
  else
    d.engines = {{SdpaDirection::backward, true}, {SdpaDirection::backward, false}};
}

void finalize_plan(Descriptor& d) {
  value<cudnnHandle_t>(d, CUDNN_ATTR_EXECUTION_PLAN_HANDLE);
  const Descriptor& config = linked(d, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
  d.graph = config.graph;
  d.engine = config.engine;
  // The backward asks for scratch of one f32 per query row (as a dQ accumulation tile would), so that
  // the caller's workspace handling runs here too.
  d.workspace_bytes = 0;
  if (d.engine.direction == SdpaDirection::backward) {
    const TensorDesc& q = d.graph[3].x;
    d.workspace_bytes = q.dims[0] * q.dims[1] * q.dims[2] * int64_t(sizeof(float));
  }
}

void finalize(Descriptor& d) {
  switch (d.type) {
    case CUDNN_BACKEND_TENSOR_DESCRIPTOR: finalize_tensor(d); break;
    case CUDNN_BACKEND_POINTWISE_DESCRIPTOR:
      value<cudnnPointwiseMode_t>(d, CUDNN_ATTR_POINTWISE_MODE);
      value<cudnnDataType_t>(d, CUDNN_ATTR_POINTWISE_MATH_PREC);
      break;
    case CUDNN_BACKEND_REDUCTION_DESCRIPTOR:
      value<cudnnReduceTensorOp_t>(d, CUDNN_ATTR_REDUCTION_OPERATOR);
      value<cudnnDataType_t>(d, CUDNN_ATTR_REDUCTION_COMP_TYPE);
      break;
    case CUDNN_BACKEND_MATMUL_DESCRIPTOR:
      if (value<cudnnDataType_t>(d, CUDNN_ATTR_MATMUL_COMP_TYPE) != CUDNN_DATA_FLOAT)
        fail(CUDNN_STATUS_NOT_SUPPORTED, "matmul compute types other than f32 are not emulated");
      break;
    case CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR:
    case CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR:
    case CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR:
    case CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR: finalize_operation(d); break;
    case CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR: finalize_graph(d); break;
    case CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR: finalize_heuristics(d); break;
    case CUDNN_BACKEND_ENGINECFG_DESCRIPTOR:
      if (d.graph.empty()) fail(CUDNN_STATUS_BAD_PARAM, "an engine configuration comes from the heuristics' results");
      break;
    case CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR: finalize_plan(d); break;
    case CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR:
      if (values<int64_t>(d, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS).size() !=
          values<void*>(d, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS).size())
        fail(CUDNN_STATUS_BAD_PARAM, "a variant pack needs one data pointer per unique id");
      values<void*>(d, CUDNN_ATTR_VARIANT_PACK_WORKSPACE);
      break;
    case CUDNN_BACKEND_ENGINE_DESCRIPTOR: break;
  }
  d.finalized = true;
}

// Fills a caller-made descriptor from `source` (an engine configuration or engine of the results).
void fill(cudnnBackendDescriptor_t target, cudnnBackendDescriptorType_t type, const std::vector<Operation>& graph,
          const EngineChoice& engine) {
  Descriptor& d = checked(target);
  if (d.type != type)
    fail(CUDNN_STATUS_BAD_PARAM,
         std::string("the result array must hold descriptors of type ") + std::to_string(int(type)));
  d.graph = graph;
  d.engine = engine;
  d.finalized = true;
}

void get_attribute(const Descriptor& d, cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
                   int64_t requested, int64_t* count, void* out) {
  if (!d.finalized) fail(CUDNN_STATUS_BAD_PARAM, "attributes are read from finalized descriptors");
  auto expect = [&](cudnnBackendAttributeType_t wanted) {
    if (type != wanted)
      fail(CUDNN_STATUS_BAD_PARAM, std::string("attribute ") + std::to_string(int(name)) + " has another type");
  };
  if (d.type == CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR && name == CUDNN_ATTR_ENGINEHEUR_RESULTS) {
    expect(CUDNN_TYPE_BACKEND_DESCRIPTOR);
    const int64_t n = std::min<int64_t>(requested, int64_t(d.engines.size()));
    for (int64_t i = 0; i < n; ++i)
      fill(static_cast<cudnnBackendDescriptor_t*>(out)[i], CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, d.graph,
           d.engines[size_t(i)]);
    *count = requested == 0 ? int64_t(d.engines.size()) : n;
    return;
  }
  if (d.type == CUDNN_BACKEND_ENGINECFG_DESCRIPTOR && name == CUDNN_ATTR_ENGINECFG_ENGINE) {
    expect(CUDNN_TYPE_BACKEND_DESCRIPTOR);
    if (requested < 1) fail(CUDNN_STATUS_BAD_PARAM, "the engine is read into one descriptor");
    fill(*static_cast<cudnnBackendDescriptor_t*>(out), CUDNN_BACKEND_ENGINE_DESCRIPTOR, d.graph, d.engine);
    *count = 1;
    return;
  }
  if (d.type == CUDNN_BACKEND_ENGINE_DESCRIPTOR && name == CUDNN_ATTR_ENGINE_NUMERICAL_NOTE) {
    expect(CUDNN_TYPE_NUMERICAL_NOTE);
    std::vector<cudnnBackendNumericalNote_t> notes = {CUDNN_NUMERICAL_NOTE_TENSOR_CORE};
    if (d.engine.nondeterministic) notes.push_back(CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC);
    const int64_t n = std::min<int64_t>(requested, int64_t(notes.size()));
    if (n > 0) std::memcpy(out, notes.data(), size_t(n) * sizeof(notes[0]));
    *count = requested == 0 ? int64_t(notes.size()) : n;
    return;
  }
  if (d.type == CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR && name == CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE) {
    expect(CUDNN_TYPE_INT64);
    if (requested < 1) fail(CUDNN_STATUS_BAD_PARAM, "the workspace size is read into one int64");
    *static_cast<int64_t*>(out) = d.workspace_bytes;
    if (count) *count = 1;
    return;
  }
  fail(CUDNN_STATUS_NOT_SUPPORTED, std::string("reading attribute ") + std::to_string(int(name)) +
                                       " of descriptor type " + std::to_string(int(d.type)) + " is not emulated");
}

int64_t nondeterministic_runs = 0;

void execute(cudnnHandle_t handle, const Descriptor& plan, const Descriptor& pack) {
  if (!plan.finalized || plan.type != CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR || !pack.finalized ||
      pack.type != CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR)
    fail(CUDNN_STATUS_BAD_PARAM, "execute takes a finalized execution plan and variant pack");
  if (handle->device != engine::emu::current_device())
    fail(CUDNN_STATUS_BAD_PARAM, std::string("the handle belongs to device ") + std::to_string(handle->device) +
                                     std::string(" but device ") + std::to_string(engine::emu::current_device()) +
                                     " is current");
  const std::vector<int64_t> uids = values<int64_t>(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS);
  const std::vector<void*> pointers = values<void*>(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS);
  std::map<int64_t, void*> bound;
  for (size_t i = 0; i < uids.size(); ++i) bound[uids[i]] = pointers[i];
  std::map<int64_t, const TensorDesc*> real;
  for (const Operation& op : plan.graph)
    for (const TensorDesc* t : {&op.x, op.has_b ? &op.b : nullptr, op.has_t ? &op.t : nullptr, &op.y})
      if (t && !t->is_virtual) real[t->uid] = t;
  for (const auto& [uid, t] : real) {
    auto found = bound.find(uid);
    if (found == bound.end() || !found->second)
      fail(CUDNN_STATUS_BAD_PARAM,
           std::string("the variant pack gives no pointer for tensor uid ") + std::to_string(uid));
    if (t->by_value) continue;
    if (reinterpret_cast<uintptr_t>(found->second) % uintptr_t(t->alignment) != 0)
      fail(CUDNN_STATUS_BAD_PARAM, std::string("tensor uid ") + std::to_string(uid) +
                                       " is not aligned to its declared " + std::to_string(t->alignment) + " bytes");
    int64_t last = 0;
    for (size_t i = 0; i < t->dims.size(); ++i) last += (t->dims[i] - 1) * t->strides[i];
    const std::string what = std::string("emulated cuDNN, tensor uid ") + std::to_string(uid);
    engine::emu::check_device_range(found->second, size_t(last + 1) * engine::emu::detail::element_size(t->type), what.c_str());
  }
  if (plan.workspace_bytes > 0)
    engine::emu::check_device_range(values<void*>(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE)[0], size_t(plan.workspace_bytes),
                            "emulated cuDNN workspace");
  engine::emu::detail::evaluate(plan.graph, bound);
  if (plan.engine.nondeterministic) ++nondeterministic_runs;
}

// Runs `body` (one call at a time: the descriptors are shared), turning a failure into its status
// and the thread's last error text.
template <typename F>
cudnnStatus_t guarded(F&& body) {
  static std::mutex mutex;
  const std::lock_guard<std::mutex> lock(mutex);
  try {
    body();
    last_error.clear();
    return CUDNN_STATUS_SUCCESS;
  } catch (const Failure& f) {
    last_error = "emulated cuDNN: " + f.message;
    return f.status;
  } catch (const engine::Error& e) {
    last_error = e.what();
    return CUDNN_STATUS_EXECUTION_FAILED;
  }
}

}  // namespace

namespace engine::emu {
int64_t cudnn_nondeterministic_executions() { return nondeterministic_runs; }
void set_cudnn_refusal(const std::string& reason) {
  guarded([&] { refusal_for_tests = reason; });
}
}  // namespace engine::emu

size_t cudnnGetVersion() { return 91900; }

const char* cudnnGetErrorString(cudnnStatus_t status) {
  switch (status) {
    case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_NOT_INITIALIZED: return "CUDNN_STATUS_NOT_INITIALIZED";
    case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
    case CUDNN_STATUS_INTERNAL_ERROR: return "CUDNN_STATUS_INTERNAL_ERROR";
    case CUDNN_STATUS_EXECUTION_FAILED: return "CUDNN_STATUS_EXECUTION_FAILED";
  }
  return "CUDNN_STATUS_UNKNOWN";
}

void cudnnGetLastErrorString(char* message, size_t max_size) {
  if (max_size == 0) return;
  const size_t n = std::min(max_size - 1, last_error.size());
  std::memcpy(message, last_error.data(), n);
  message[n] = '\0';
}

cudnnStatus_t cudnnCreate(cudnnHandle_t* handle) {
  return guarded([&] { *handle = new cudnnContext{engine::emu::current_device(), nullptr}; });
}

cudnnStatus_t cudnnDestroy(cudnnHandle_t handle) {
  delete handle;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t stream) {
  return guarded([&] {
    if (!handle) fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetStream needs a handle");
    handle->stream = stream;
  });
}

cudnnStatus_t cudnnBackendCreateDescriptor(cudnnBackendDescriptorType_t type, cudnnBackendDescriptor_t* descriptor) {
  return guarded([&] {
    auto d = std::make_unique<Descriptor>();
    d->type = type;
    live_descriptors().insert(d.get());
    *descriptor = d.release();
  });
}

cudnnStatus_t cudnnBackendDestroyDescriptor(cudnnBackendDescriptor_t descriptor) {
  return guarded([&] {
    Descriptor& d = checked(descriptor);
    live_descriptors().erase(&d);
    delete &d;
  });
}

cudnnStatus_t cudnnBackendFinalize(cudnnBackendDescriptor_t descriptor) {
  return guarded([&] {
    Descriptor& d = checked(descriptor);
    if (d.finalized && d.type != CUDNN_BACKEND_ENGINECFG_DESCRIPTOR)
      fail(CUDNN_STATUS_BAD_PARAM, "descriptor already finalized");
    finalize(d);
  });
}

cudnnStatus_t cudnnBackendSetAttribute(cudnnBackendDescriptor_t descriptor, cudnnBackendAttributeName_t name,
                                       cudnnBackendAttributeType_t type, int64_t count, const void* values) {
  return guarded([&] {
    Descriptor& d = checked(descriptor);
    if (d.finalized) fail(CUDNN_STATUS_BAD_PARAM, "attributes of a finalized descriptor cannot change");
    if (settable_type(d.type, name) != type)
      fail(CUDNN_STATUS_BAD_PARAM, std::string("attribute ") + std::to_string(int(name)) +
                                       std::string(" given as type ") + std::to_string(int(type)));
    if (count < 0 || (count > 0 && !values)) fail(CUDNN_STATUS_BAD_PARAM, "attribute values missing");
    Attribute a{type, count, std::vector<uint8_t>(size_t(count) * attribute_size(type))};
    if (count > 0) std::memcpy(a.bytes.data(), values, a.bytes.size());
    d.attributes[int(name)] = std::move(a);
  });
}

cudnnStatus_t cudnnBackendGetAttribute(cudnnBackendDescriptor_t const descriptor, cudnnBackendAttributeName_t name,
                                       cudnnBackendAttributeType_t type, int64_t requested_count, int64_t* count,
                                       void* values) {
  return guarded([&] { get_attribute(checked(descriptor), name, type, requested_count, count, values); });
}

cudnnStatus_t cudnnBackendExecute(cudnnHandle_t handle, cudnnBackendDescriptor_t plan,
                                  cudnnBackendDescriptor_t variant_pack) {
  return guarded([&] {
    if (!handle) fail(CUDNN_STATUS_BAD_PARAM, "cudnnBackendExecute needs a handle");
    execute(handle, checked(plan), checked(variant_pack));
  });
}
