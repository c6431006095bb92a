// Recognition and host evaluation of the emulated cuDNN's SDPA graphs (engine/emu/cudnn_sdpa.h).
#include "engine/emu/cudnn_sdpa.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "engine/bfloat16.h"
#include "engine/emu/device_memory.h"
#include "engine/error.h"

namespace engine::emu::detail {

namespace {

// ---- Recognition ----

// The name of an operation in a pattern: "matmul", "reshape", "reduce_add", "mul", "gen_index", …
std::string token(const Operation& op) {
  switch (op.kind) {
    case OperationKind::matmul: return "matmul";
    case OperationKind::reshape: return "reshape";
    case OperationKind::reduction: return op.reduce == CUDNN_REDUCE_TENSOR_MAX ? "reduce_max" : "reduce_add";
    case OperationKind::pointwise: break;
  }
  switch (op.mode) {
    case CUDNN_POINTWISE_ADD: return "add";
    case CUDNN_POINTWISE_MUL: return "mul";
    case CUDNN_POINTWISE_MAX: return "max";
    case CUDNN_POINTWISE_DIV: return "div";
    case CUDNN_POINTWISE_SUB: return "sub";
    case CUDNN_POINTWISE_EXP: return "exp";
    case CUDNN_POINTWISE_LOG: return "log";
    case CUDNN_POINTWISE_IDENTITY: return "identity";
    case CUDNN_POINTWISE_CMP_GT: return "cmp_gt";
    case CUDNN_POINTWISE_CMP_GE: return "cmp_ge";
    case CUDNN_POINTWISE_CMP_LT: return "cmp_lt";
    case CUDNN_POINTWISE_GEN_INDEX: return "gen_index";
    case CUDNN_POINTWISE_BINARY_SELECT: return "binary_select";
  }
  return std::string("pointwise ") + std::to_string(int(op.mode));
}

using Pattern = std::vector<std::string>;

Pattern operator+(Pattern a, const Pattern& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The score subgraphs cudnn-frontend inserts: ALiBi (slope_h · (col − row) added), the causal mask
// aligned top-left (row ≥ col) or bottom-right (row + Tk − Tq ≥ col), the masked scores set to −inf.
const Pattern kAlibi = {"gen_index", "gen_index", "sub", "mul", "add"};
const Pattern kCausalTopLeft = {"gen_index", "gen_index", "cmp_ge", "binary_select"};
const Pattern kCausalBottomRight = {"gen_index", "gen_index", "add", "sub", "cmp_ge", "binary_select"};
const Pattern kScores = {"matmul", "mul"};
const Pattern kForwardSoftmax = {"reduce_max", "sub", "exp", "reduce_add", "log", "add", "div", "matmul"};
const Pattern kBackwardRowSums = {"mul", "reduce_add", "mul"};
const Pattern kBackwardBody = {"exp", "reshape", "matmul",  "matmul", "sub",
                               "mul", "mul",     "reshape", "matmul", "reshape"};

struct Variant {
  bool alibi;
  int mask;  // 0 none, 1 top-left, 2 bottom-right
};

const Pattern& mask_pattern(int mask) {
  static const Pattern none;
  return mask == 1 ? kCausalTopLeft : mask == 2 ? kCausalBottomRight : none;
}

bool is_io_type(cudnnDataType_t type) { return type == CUDNN_DATA_BFLOAT16 || type == CUDNN_DATA_HALF; }

std::string describe(const TensorDesc& t) {
  std::string dims;
  for (size_t i = 0; i < t.dims.size(); ++i) {
    if (i) dims += "x";
    dims += std::to_string(t.dims[i]);
  }
  return std::string("tensor uid ") + std::to_string(t.uid) + " (" + dims + ")";
}

// Checks a real (non-virtual) 4-D IO tensor whose axis `unit_axis` has stride 1; "" when it is.
std::string check_io(const TensorDesc& t, const char* role, size_t unit_axis) {
  if (t.is_virtual || t.by_value) return std::string(role) + " must be a real tensor, got a virtual " + describe(t);
  if (!is_io_type(t.type))
    return std::string(role) + std::string(" must be bf16 or fp16, got data type ") + std::to_string(t.type);
  if (t.dims.size() != 4) return std::string(role) + " must be 4-D, got " + describe(t);
  if (t.strides[unit_axis] != 1)
    return std::string(role) + std::string(" must have stride 1 on axis ") + std::to_string(unit_axis) +
           " (rows contiguous), got " + describe(t) + std::string(" with stride ") +
           std::to_string(t.strides[unit_axis]);
  return "";
}

std::string check_scalar(const TensorDesc& t, const char* role) {
  if (!t.by_value || t.type != CUDNN_DATA_FLOAT) return std::string(role) + " must be a by-value f32 scalar";
  return "";
}

std::string check_stats(const TensorDesc& t, const char* role) {
  if (t.is_virtual || t.type != CUDNN_DATA_FLOAT || t.dims.size() != 4 || t.dims[3] != 1)
    return std::string(role) + " must be a real f32 (B, H, Tq, 1) tensor, got " +
           std::string(t.is_virtual ? "a virtual " : "") + describe(t);
  return "";
}

// The checks shared by both directions on the score subgraphs starting at `at` (after Q·Kᵀ and the
// scale); advances `at` past them.
std::string check_score_modifiers(const std::vector<Operation>& ops, size_t& at, const Variant& v, bool stats_first) {
  if (v.alibi) {
    const Operation& slopes = ops[at + 3];
    if (slopes.b.is_virtual || slopes.b.type != CUDNN_DATA_FLOAT || slopes.b.dims.size() != 4 ||
        slopes.b.dims[0] != 1 || slopes.b.dims[2] != 1 || slopes.b.dims[3] != 1)
      return "the ALiBi slopes must be a real f32 (1, H, 1, 1) tensor, got " + describe(slopes.b);
    at += kAlibi.size();
  }
  if (stats_first) {
    if (std::string e = check_stats(ops[at].b, "the backward's Stats"); !e.empty()) return e;
    ++at;
  }
  if (v.mask != 0) {
    const size_t size = mask_pattern(v.mask).size();
    if (std::string e = check_scalar(ops[at + size - 1].b, "the mask's fill value"); !e.empty()) return e;
    at += size;
  }
  return "";
}

std::string check_forward(const std::vector<Operation>& ops, const Variant& v) {
  if (std::string e = check_io(ops[0].x, "Q", 3); !e.empty()) return e;
  if (std::string e = check_io(ops[0].b, "K (as Kᵀ)", 2); !e.empty()) return e;
  if (std::string e = check_scalar(ops[1].b, "the attention scale"); !e.empty()) return e;
  size_t at = 2;
  if (std::string e = check_score_modifiers(ops, at, v, false); !e.empty()) return e;
  if (std::string e = check_stats(ops[at + 5].y, "Stats"); !e.empty()) return e;
  if (!is_io_type(ops[at + 6].y.type)) return "the probabilities fed to P·V must have the IO type (bf16 or fp16)";
  if (std::string e = check_io(ops[at + 7].b, "V", 3); !e.empty()) return e;
  if (std::string e = check_io(ops[at + 7].y, "O", 3); !e.empty()) return e;
  return "";
}

std::string check_backward(const std::vector<Operation>& ops, const Variant& v) {
  if (std::string e = check_io(ops[0].x, "dO", 3); !e.empty()) return e;
  if (std::string e = check_io(ops[0].b, "O", 3); !e.empty()) return e;
  if (std::string e = check_scalar(ops[2].b, "the row sums' factor"); !e.empty()) return e;
  if (ops[2].y.is_virtual || ops[2].y.type != CUDNN_DATA_FLOAT)
    return "the backward's row sums of dO ⊙ O must be a real f32 (B, H, Tq, 1) tensor (cuDNN 9 reads them from "
           "memory), got a " +
           std::string(ops[2].y.is_virtual ? "virtual " : "") + describe(ops[2].y);
  if (std::string e = check_io(ops[3].x, "Q", 3); !e.empty()) return e;
  if (std::string e = check_io(ops[3].b, "K (as Kᵀ)", 2); !e.empty()) return e;
  if (std::string e = check_scalar(ops[4].b, "the attention scale"); !e.empty()) return e;
  size_t at = 5;
  if (std::string e = check_score_modifiers(ops, at, v, true); !e.empty()) return e;
  // at: exp, reshape Pᵀ, matmul dV, matmul dO·Vᵀ, sub, mul, mul, reshape dSᵀ, matmul dK, reshape K, matmul dQ
  if (!is_io_type(ops[at + 1].y.type)) return "Pᵀ fed to Pᵀ·dO must have the IO type (bf16 or fp16)";
  if (std::string e = check_io(ops[at + 2].y, "dV", 3); !e.empty()) return e;
  if (std::string e = check_io(ops[at + 3].b, "V (as Vᵀ)", 2); !e.empty()) return e;
  if (!is_io_type(ops[at + 7].y.type)) return "dSᵀ fed to dSᵀ·Q must have the IO type (bf16 or fp16)";
  if (std::string e = check_io(ops[at + 8].y, "dK", 3); !e.empty()) return e;
  if (ops[at + 9].x.is_virtual) return "K for dS·K must be the input Kᵀ seen back (a reshape of the real tensor)";
  const Operation& dq = ops[at + 10];
  if (at + 11 == ops.size()) return check_io(dq.y, "dQ", 3);
  // The accumulator form: dS·K into an f32 buffer, then copied to dQ.
  if (dq.y.is_virtual || dq.y.type != CUDNN_DATA_FLOAT) return "the dQ accumulator must be a real f32 tensor";
  return check_io(ops[at + 11].y, "dQ", 3);
}

// ---- Evaluation ----

// 1 + the largest offset the tensor addresses.
int64_t extent(const TensorDesc& t) {
  int64_t last = 0;
  for (size_t i = 0; i < t.dims.size(); ++i) last += (t.dims[i] - 1) * t.strides[i];
  return last + 1;
}

// Calls f(index, offset) for every element of `t`'s dims in row-major order.
template <typename F>
void for_each_element(const std::vector<int64_t>& dims, F&& f) {
  const int64_t n = [&] {
    int64_t count = 1;
    for (int64_t d : dims) count *= d;
    return count;
  }();
  std::vector<int64_t> index(dims.size(), 0);
  for (int64_t linear = 0; linear < n; ++linear) {
    f(index);
    for (size_t axis = dims.size(); axis-- > 0;) {
      if (++index[axis] < dims[axis]) break;
      index[axis] = 0;
    }
  }
}

// Offset in `t` of the element at `index` (an index into a result whose dims t broadcasts to).
int64_t offset_of(const TensorDesc& t, const std::vector<int64_t>& index) {
  int64_t offset = 0;
  for (size_t i = 0; i < t.dims.size(); ++i) offset += (t.dims[i] == 1 ? 0 : index[i]) * t.strides[i];
  return offset;
}

// `value` as a tensor of `type` holds it.
double rounded(cudnnDataType_t type, double value) {
  switch (type) {
    case CUDNN_DATA_FLOAT: return double(float(value));
    case CUDNN_DATA_BFLOAT16: return double(engine::f32_from_bf16_bits(engine::bf16_bits_from_f64(value)));
    case CUDNN_DATA_INT32: return double(int32_t(value));
    case CUDNN_DATA_BOOLEAN: return value != 0.0 ? 1.0 : 0.0;
    default: break;
  }
  throw engine::Error(std::string("emulated cuDNN: data type ") + std::to_string(int(type)) +
                      " is not emulated in a graph");
}

double load(const void* base, cudnnDataType_t type, int64_t index) {
  switch (type) {
    case CUDNN_DATA_FLOAT: return static_cast<const float*>(base)[index];
    case CUDNN_DATA_BFLOAT16: return engine::f32_from_bf16_bits(static_cast<const uint16_t*>(base)[index]);
    case CUDNN_DATA_INT32: return static_cast<const int32_t*>(base)[index];
    case CUDNN_DATA_BOOLEAN: return static_cast<const bool*>(base)[index] ? 1.0 : 0.0;
    default: break;
  }
  throw engine::Error(std::string("emulated cuDNN: data type ") + std::to_string(int(type)) + " cannot be read");
}

void store(void* base, cudnnDataType_t type, int64_t index, double value) {
  switch (type) {
    case CUDNN_DATA_FLOAT: static_cast<float*>(base)[index] = float(value); return;
    case CUDNN_DATA_BFLOAT16: static_cast<uint16_t*>(base)[index] = engine::bf16_bits_from_f64(value); return;
    default: break;
  }
  throw engine::Error(std::string("emulated cuDNN: data type ") + std::to_string(int(type)) + " cannot be written");
}

// The values of the graph's tensors by uid, each a buffer addressed through the tensor's strides.
using Values = std::map<int64_t, std::vector<double>>;

const std::vector<double>& values_of(const Values& values, const TensorDesc& t) {
  auto found = values.find(t.uid);
  ENGINE_CHECK(found != values.end(), "emulated cuDNN: ", describe(t), " is read before it is computed");
  return found->second;
}

double pointwise(cudnnPointwiseMode_t mode, double x, double b, double t) {
  switch (mode) {
    case CUDNN_POINTWISE_ADD: return x + b;
    case CUDNN_POINTWISE_MUL: return x * b;
    case CUDNN_POINTWISE_MAX: return std::fmax(x, b);
    case CUDNN_POINTWISE_DIV: return x / b;
    case CUDNN_POINTWISE_SUB: return x - b;
    case CUDNN_POINTWISE_EXP: return std::exp(x);
    case CUDNN_POINTWISE_LOG: return std::log(x);
    case CUDNN_POINTWISE_IDENTITY: return x;
    case CUDNN_POINTWISE_CMP_GT: return x > b ? 1.0 : 0.0;
    case CUDNN_POINTWISE_CMP_GE: return x >= b ? 1.0 : 0.0;
    case CUDNN_POINTWISE_CMP_LT: return x < b ? 1.0 : 0.0;
    case CUDNN_POINTWISE_BINARY_SELECT: return t != 0.0 ? x : b;
    case CUDNN_POINTWISE_GEN_INDEX: break;
  }
  throw engine::Error(std::string("emulated cuDNN: pointwise mode ") + std::to_string(int(mode)) + " is not emulated");
}

void run(const Operation& op, Values& values) {
  std::vector<double> y(size_t(extent(op.y)), std::numeric_limits<double>::quiet_NaN());
  const std::vector<double>& x = values_of(values, op.x);
  switch (op.kind) {
    case OperationKind::pointwise: {
      const std::vector<double>* b = op.has_b ? &values_of(values, op.b) : nullptr;
      const std::vector<double>* t = op.has_t ? &values_of(values, op.t) : nullptr;
      for_each_element(op.y.dims, [&](const std::vector<int64_t>& i) {
        double result;
        if (op.mode == CUDNN_POINTWISE_GEN_INDEX) {
          result = double(i[size_t(op.axis)]);
        } else {
          const double bv = b ? (*b)[size_t(offset_of(op.b, i))] : 0.0;
          const double tv = t ? (*t)[size_t(offset_of(op.t, i))] : 0.0;
          // f32 math: each operand as f32, the result rounded to f32 before the output's type.
          result = double(float(pointwise(op.mode, x[size_t(offset_of(op.x, i))], bv, tv)));
        }
        y[size_t(offset_of(op.y, i))] = rounded(op.y.type, result);
      });
      break;
    }
    case OperationKind::reduction: {
      const bool is_max = op.reduce == CUDNN_REDUCE_TENSOR_MAX;
      for_each_element(op.y.dims, [&](const std::vector<int64_t>& i) {
        y[size_t(offset_of(op.y, i))] = is_max ? -std::numeric_limits<double>::infinity() : 0.0;
      });
      for_each_element(op.x.dims, [&](const std::vector<int64_t>& i) {
        double& acc = y[size_t(offset_of(op.y, i))];
        const double v = x[size_t(offset_of(op.x, i))];
        acc = is_max ? std::fmax(acc, v) : acc + v;
      });
      for_each_element(op.y.dims, [&](const std::vector<int64_t>& i) {
        double& v = y[size_t(offset_of(op.y, i))];
        v = rounded(op.y.type, v);
      });
      break;
    }
    case OperationKind::matmul: {
      const std::vector<double>& b = values_of(values, op.b);
      const size_t rank = op.y.dims.size();
      const int64_t K = op.x.dims[rank - 1];
      for_each_element(op.y.dims, [&](const std::vector<int64_t>& i) {
        std::vector<int64_t> ai = i, bi = i;
        double sum = 0.0;
        for (int64_t k = 0; k < K; ++k) {
          ai[rank - 1] = k;
          bi[rank - 2] = k;
          sum += x[size_t(offset_of(op.x, ai))] * b[size_t(offset_of(op.b, bi))];
        }
        y[size_t(offset_of(op.y, i))] = rounded(op.y.type, sum);
      });
      break;
    }
    case OperationKind::reshape: {
      // The same memory seen with y's dims and strides, each value converted to y's type.
      ENGINE_CHECK(extent(op.y) <= int64_t(x.size()), "emulated cuDNN: reshape ", describe(op.y), " reaches past ",
                   describe(op.x));
      for (size_t i = 0; i < y.size(); ++i) y[i] = std::isnan(x[i]) ? x[i] : rounded(op.y.type, x[i]);
      break;
    }
  }
  values[op.y.uid] = std::move(y);
}

}  // namespace

size_t element_size(cudnnDataType_t type) {
  switch (type) {
    case CUDNN_DATA_FLOAT:
    case CUDNN_DATA_INT32: return 4;
    case CUDNN_DATA_BFLOAT16:
    case CUDNN_DATA_HALF: return 2;
    case CUDNN_DATA_BOOLEAN: return 1;
    case CUDNN_DATA_DOUBLE:
    case CUDNN_DATA_INT64: return 8;
  }
  throw engine::Error(std::string("emulated cuDNN: data type ") + std::to_string(int(type)) + " is not emulated");
}

std::string recognise_sdpa(const std::vector<Operation>& operations, SdpaDirection& direction) {
  Pattern given;
  for (const Operation& op : operations) given.push_back(token(op));
  for (const bool alibi : {false, true}) {
    for (const int mask : {0, 1, 2}) {
      const Variant v{alibi, mask};
      const Pattern modifiers = (alibi ? kAlibi : Pattern{}) + mask_pattern(mask);
      const Pattern forward = kScores + modifiers + kForwardSoftmax;
      const Pattern backward = kBackwardRowSums + kScores + (alibi ? kAlibi : Pattern{}) + Pattern{"sub"} +
                               mask_pattern(mask) + kBackwardBody;
      std::string why;
      if (given == forward) {
        direction = SdpaDirection::forward;
        why = check_forward(operations, v);
      } else if (given == backward + Pattern{"matmul"} || given == backward + Pattern{"matmul", "identity"}) {
        direction = SdpaDirection::backward;
        why = check_backward(operations, v);
      } else {
        continue;
      }
      if (why.empty() && alibi && mask == 2) why = "cuDNN's bottom-right causal mask takes no ALiBi";
      if (why.empty() && mask == 0 && alibi) why = "cuDNN takes ALiBi only with a causal mask";
      const int64_t D = operations[direction == SdpaDirection::forward ? 0 : 3].x.dims.back();
      if (why.empty() && (D % 8 != 0 || D > 256))
        why = std::string("the head size ") + std::to_string(D) + " is not a multiple of 8 up to 256";
      return why.empty() ? "" : "SDPA graph refused: " + why;
    }
  }
  std::string listed;
  for (const std::string& t : given) listed += (listed.empty() ? "" : ", ") + t;
  return "no engine for this graph: its operations (" + listed +
         ") are not the SDPA forward or backward pattern of cuDNN 9's fused attention engines";
}

void evaluate(const std::vector<Operation>& operations, const std::map<int64_t, void*>& pointers) {
  Values values;
  std::map<int64_t, const TensorDesc*> outputs;  // real tensors an operation writes
  for (const Operation& op : operations)
    if (!op.y.is_virtual) outputs[op.y.uid] = &op.y;
  // Inputs: every real tensor no operation writes, read through its strides only.
  auto load_input = [&](const TensorDesc& t) {
    if (t.is_virtual || outputs.count(t.uid) || values.count(t.uid)) return;
    const void* base = pointers.at(t.uid);
    std::vector<double> v(size_t(extent(t)), std::numeric_limits<double>::quiet_NaN());
    for_each_element(t.dims, [&](const std::vector<int64_t>& i) {
      const int64_t offset = offset_of(t, i);
      v[size_t(offset)] = load(base, t.type, offset);
    });
    values[t.uid] = std::move(v);
  };
  for (const Operation& op : operations) {
    load_input(op.x);
    if (op.has_b) load_input(op.b);
    if (op.has_t) load_input(op.t);
  }
  for (const Operation& op : operations) run(op, values);
  // Outputs: written through their strides only, so elements between them are left as they were.
  for (const auto& [uid, t] : outputs) {
    void* base = pointers.at(uid);
    const std::vector<double>& v = values.at(uid);
    for_each_element(t->dims, [&](const std::vector<int64_t>& i) {
      const int64_t offset = offset_of(*t, i);
      store(base, t->type, offset, v[size_t(offset)]);
    });
  }
}

}  // namespace engine::emu::detail
