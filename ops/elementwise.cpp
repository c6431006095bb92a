// Elementwise ops: shape, dtype and device checks, device dispatch and backward nodes.
// Kernels: ops/cpu/elementwise.h.
//
// Shapes: a, b, x: any shapes that broadcast together (NumPy rules); out: the broadcast shape.
// The backward of a broadcast operand sums the output gradient over the broadcast dimensions
// (reduce_to), with the deterministic reduction of ops/reduce.h.
#include "ops/elementwise.h"

#include <algorithm>
#include <cctype>
#include <string>

#include "engine/autograd.h"
#include "engine/strided_loop.h"
#include "ops/cpu/elementwise.h"
#include "ops/cuda_kernels.h"
#include "ops/reduce.h"

namespace ops {

namespace {

using cpu::BinaryOp;
using cpu::UnaryOp;
using engine::Node;
using engine::Shape;

const char* binary_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::add: return "add";
    case BinaryOp::sub: return "sub";
    case BinaryOp::mul: return "mul";
    case BinaryOp::div: return "div";
  }
  return "?";
}

const char* unary_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::add_scalar: return "add_scalar";
    case UnaryOp::mul_scalar: return "mul_scalar";
    case UnaryOp::pow_scalar: return "pow_scalar";
    case UnaryOp::neg: return "neg";
    case UnaryOp::exp: return "exp";
    case UnaryOp::log: return "log";
    case UnaryOp::tanh: return "tanh";
    case UnaryOp::sqrt: return "sqrt";
    case UnaryOp::rsqrt: return "rsqrt";
    case UnaryOp::gelu: return "gelu";
    case UnaryOp::relu: return "relu";
  }
  return "?";
}

// Node name from an op name: "add_scalar" -> "AddScalarBackward".
std::string backward_name(const std::string& op) {
  std::string name;
  bool upper = true;
  for (char c : op) {
    if (c == '_') {
      upper = true;
      continue;
    }
    name += upper ? char(std::toupper(static_cast<unsigned char>(c))) : c;
    upper = false;
  }
  return name + "Backward";
}

void check_floating(const char* op, const Tensor& t) {
  ENGINE_CHECK(engine::is_floating(t.dtype()), op, ": expected a floating tensor (f32 or f64), got ", t.describe());
}

// The broadcast shape of all operands; the error names the op and every operand.
Shape broadcast_operands(const char* op, std::initializer_list<const Tensor*> operands) {
  size_t rank = 0;
  for (const Tensor* t : operands) rank = std::max(rank, t->shape().size());
  Shape shape(rank, 1);
  bool ok = true;
  for (const Tensor* t : operands) {
    const size_t lead = rank - t->shape().size();
    for (size_t d = 0; d < t->shape().size(); ++d) {
      const int64_t size = t->shape()[d];
      if (size == 1) continue;
      if (shape[lead + d] != 1 && shape[lead + d] != size) ok = false;
      shape[lead + d] = size;
    }
  }
  if (!ok) {
    std::string names;
    for (const Tensor* t : operands) names += (names.empty() ? "" : " and ") + t->describe();
    throw engine::Error(std::string(op) + ": shapes do not broadcast together: " + names);
  }
  return shape;
}

// t's strides for iterating over `shape` (0 on the dimensions t is broadcast along).
Shape strides_in(const Tensor& t, const Shape& shape) {
  return engine::broadcast_strides(t.shape(), t.strides(), shape);
}

// Sums a gradient of the broadcast output shape down to an operand's shape.
Tensor reduce_to(const Tensor& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  const int64_t lead = grad.dim() - int64_t(shape.size());
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < grad.dim(); ++d)
    if (d < lead || (shape[size_t(d - lead)] == 1 && grad.shape()[size_t(d)] != 1)) dims.push_back(d);
  if (dims.empty()) return grad.reshape(shape);  // only leading size-1 dimensions differ
  return sum(grad, dims, /*keepdim=*/true).reshape(shape);
}

// ---- Device dispatch: the one place per kernel where a device picks its implementation. ----

Tensor run_binary(BinaryOp op, const Tensor& a, const Tensor& b, const Shape& shape) {
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  if (a.device().is_cuda()) {
    cuda::binary_forward(binary_name(op), op, out, a, strides_in(a, shape), b, strides_in(b, shape));
    return out;
  }
  ENGINE_DISPATCH_FLOAT(a.dtype(), binary_name(op), [&] {
    cpu::binary_forward<scalar_t>(op, out.data<scalar_t>(), a.data<scalar_t>(), b.data<scalar_t>(), shape,
                                  strides_in(a, shape), strides_in(b, shape));
  });
  return out;
}

Tensor run_div_backward_divisor(const Tensor& grad_out, const Tensor& a, const Tensor& b) {
  const Shape& shape = grad_out.shape();
  Tensor grad = Tensor::empty(shape, grad_out.dtype(), grad_out.device());
  if (grad_out.device().is_cuda()) {
    cuda::div_backward_divisor(grad, grad_out, a, strides_in(a, shape), b, strides_in(b, shape));
    return grad;
  }
  ENGINE_DISPATCH_FLOAT(grad_out.dtype(), "div backward", [&] {
    cpu::div_backward_divisor<scalar_t>(grad.data<scalar_t>(), grad_out.data<scalar_t>(), a.data<scalar_t>(),
                                        b.data<scalar_t>(), shape, grad_out.strides(), strides_in(a, shape),
                                        strides_in(b, shape));
  });
  return grad;
}

Tensor run_unary(UnaryOp op, double scalar, const Tensor& x) {
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.device().is_cuda()) {
    cuda::unary_forward(unary_name(op), op, scalar, out, x);
    return out;
  }
  ENGINE_DISPATCH_FLOAT(x.dtype(), unary_name(op), [&] {
    cpu::unary_forward<scalar_t>(op, scalar, out.data<scalar_t>(), x.data<scalar_t>(), x.shape(), x.strides());
  });
  return out;
}

Tensor run_unary_backward(UnaryOp op, double scalar, const Tensor& grad_out, const Tensor& saved) {
  Tensor grad = Tensor::empty(saved.shape(), saved.dtype(), saved.device());
  if (saved.device().is_cuda()) {
    cuda::unary_backward(unary_name(op), op, scalar, grad, grad_out, saved);
    return grad;
  }
  ENGINE_DISPATCH_FLOAT(saved.dtype(), unary_name(op), [&] {
    cpu::unary_backward<scalar_t>(op, scalar, grad.data<scalar_t>(), grad_out.data<scalar_t>(),
                                  saved.data<scalar_t>(), saved.shape(), grad_out.strides(), saved.strides());
  });
  return grad;
}

// out = condition ? a : b, for any condition dtype.
Tensor run_where(const Tensor& condition, const Tensor& a, const Tensor& b, const Shape& shape, const char* op) {
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  if (a.device().is_cuda()) {
    cuda::where_forward(op, out, condition, strides_in(condition, shape), a, strides_in(a, shape), b,
                        strides_in(b, shape));
    return out;
  }
  ENGINE_DISPATCH_FLOAT(a.dtype(), op, [&] {
    using value_t = scalar_t;
    ENGINE_DISPATCH_ALL(condition.dtype(), op, [&] {
      cpu::where_forward<value_t, scalar_t>(out.data<value_t>(), condition.data<scalar_t>(), a.data<value_t>(),
                                            b.data<value_t>(), shape, strides_in(condition, shape),
                                            strides_in(a, shape), strides_in(b, shape));
    });
  });
  return out;
}

// grad_out where the condition equals keep_true, zero elsewhere.
Tensor run_where_backward(bool keep_true, const Tensor& condition, const Tensor& grad_out, const char* op) {
  const Shape& shape = grad_out.shape();
  Tensor grad = Tensor::empty(shape, grad_out.dtype(), grad_out.device());
  if (grad_out.device().is_cuda()) {
    cuda::where_backward(op, keep_true, grad, condition, strides_in(condition, shape), grad_out);
    return grad;
  }
  ENGINE_DISPATCH_FLOAT(grad_out.dtype(), op, [&] {
    using value_t = scalar_t;
    ENGINE_DISPATCH_ALL(condition.dtype(), op, [&] {
      cpu::where_backward<value_t, scalar_t>(keep_true, grad.data<value_t>(), condition.data<scalar_t>(),
                                             grad_out.data<value_t>(), shape, strides_in(condition, shape),
                                             grad_out.strides());
    });
  });
  return grad;
}

// ---- Backward nodes ----

// Gradient of a (op) b. Saves a and b (data only) for mul and div, whose derivatives read them.
class BinaryBackward final : public Node {
 public:
  BinaryBackward(BinaryOp op, const Tensor& a, const Tensor& b)
      : op_(op), a_shape_(a.shape()), b_shape_(b.shape()) {
    if (op == BinaryOp::mul || op == BinaryOp::div) {
      a_ = a.detach();
      b_ = b.detach();
    }
  }
  std::string name() const override { return backward_name(binary_name(op_)); }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    const Tensor& g = grads[0];
    const bool want_a = next_edges[0].node != nullptr, want_b = next_edges[1].node != nullptr;
    Tensor grad_a, grad_b;
    switch (op_) {
      case BinaryOp::add:
        if (want_a) grad_a = reduce_to(g, a_shape_);
        if (want_b) grad_b = reduce_to(g, b_shape_);
        break;
      case BinaryOp::sub:
        if (want_a) grad_a = reduce_to(g, a_shape_);
        if (want_b) grad_b = neg(reduce_to(g, b_shape_));
        break;
      case BinaryOp::mul:
        if (want_a) grad_a = reduce_to(run_binary(BinaryOp::mul, g, b_, g.shape()), a_shape_);
        if (want_b) grad_b = reduce_to(run_binary(BinaryOp::mul, g, a_, g.shape()), b_shape_);
        break;
      case BinaryOp::div:
        if (want_a) grad_a = reduce_to(run_binary(BinaryOp::div, g, b_, g.shape()), a_shape_);
        if (want_b) grad_b = reduce_to(run_div_backward_divisor(g, a_, b_), b_shape_);
        break;
    }
    return {grad_a, grad_b};
  }
  void release_saved() override {
    a_ = Tensor();
    b_ = Tensor();
  }

 private:
  BinaryOp op_;
  Shape a_shape_, b_shape_;
  Tensor a_, b_;  // mul and div only
};

// Gradient of a unary map. Saves the input or the output (data only), whichever the derivative
// reads (cpu::unary_backward_uses_output); nothing for the constant-derivative ops.
class UnaryBackward final : public Node {
 public:
  UnaryBackward(UnaryOp op, double scalar, const Tensor& x, const Tensor& out) : op_(op), scalar_(scalar) {
    if (op == UnaryOp::add_scalar || op == UnaryOp::mul_scalar || op == UnaryOp::neg) return;
    saved_ = cpu::unary_backward_uses_output(op) ? out.detach() : x.detach();
  }
  std::string name() const override { return backward_name(unary_name(op_)); }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    const Tensor& g = grads[0];
    switch (op_) {
      case UnaryOp::add_scalar: return {g};
      case UnaryOp::mul_scalar: return {run_unary(UnaryOp::mul_scalar, scalar_, g)};
      case UnaryOp::neg: return {run_unary(UnaryOp::neg, 0.0, g)};
      default: return {run_unary_backward(op_, scalar_, g, saved_)};
    }
  }
  void release_saved() override { saved_ = Tensor(); }

 private:
  UnaryOp op_;
  double scalar_;
  Tensor saved_;
};

// Gradient of where(condition, a, b) and masked_fill(x, mask, value): the output gradient goes to
// the operand each element was taken from. Value operand i has shape operand_shapes[i] and was
// taken where the condition is operand_is_true_branch[i]: where has a (true) and b (false);
// masked_fill has x alone (false: kept where the mask is not set).
class WhereBackward final : public Node {
 public:
  WhereBackward(const char* op, const Tensor& condition, std::vector<Shape> operand_shapes,
                std::vector<bool> operand_is_true_branch)
      : op_(op),
        condition_(condition.detach()),
        shapes_(std::move(operand_shapes)),
        true_branch_(std::move(operand_is_true_branch)) {}
  std::string name() const override { return backward_name(op_); }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    std::vector<Tensor> result(shapes_.size());
    for (size_t i = 0; i < shapes_.size(); ++i)
      if (next_edges[i].node)
        result[i] = reduce_to(run_where_backward(true_branch_[i], condition_, grads[0], op_.c_str()), shapes_[i]);
    return result;
  }
  void release_saved() override { condition_ = Tensor(); }

 private:
  std::string op_;
  Tensor condition_;
  std::vector<Shape> shapes_;
  std::vector<bool> true_branch_;
};

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = binary_name(op);
  check_floating(name, a);
  check_floating(name, b);
  engine::check_same_dtype(name, {&a, &b});
  engine::check_same_device(name, {&a, &b});
  const Shape shape = broadcast_operands(name, {&a, &b});
  Tensor out = run_binary(op, a, b, shape);
  if (engine::needs_grad({&a, &b})) engine::record(std::make_shared<BinaryBackward>(op, a, b), {&a, &b}, {&out});
  return out;
}

Tensor unary(UnaryOp op, const Tensor& x, double scalar = 0.0) {
  check_floating(unary_name(op), x);
  Tensor out = run_unary(op, scalar, x);
  if (engine::needs_grad({&x})) engine::record(std::make_shared<UnaryBackward>(op, scalar, x, out), {&x}, {&out});
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::div, a, b); }

Tensor add_scalar(const Tensor& x, double value) { return unary(UnaryOp::add_scalar, x, value); }
Tensor mul_scalar(const Tensor& x, double value) { return unary(UnaryOp::mul_scalar, x, value); }
Tensor pow_scalar(const Tensor& x, double exponent) { return unary(UnaryOp::pow_scalar, x, exponent); }

Tensor neg(const Tensor& x) { return unary(UnaryOp::neg, x); }
Tensor exp(const Tensor& x) { return unary(UnaryOp::exp, x); }
Tensor log(const Tensor& x) { return unary(UnaryOp::log, x); }
Tensor tanh(const Tensor& x) { return unary(UnaryOp::tanh, x); }
Tensor sqrt(const Tensor& x) { return unary(UnaryOp::sqrt, x); }
Tensor rsqrt(const Tensor& x) { return unary(UnaryOp::rsqrt, x); }
Tensor gelu(const Tensor& x) { return unary(UnaryOp::gelu, x); }
Tensor relu(const Tensor& x) { return unary(UnaryOp::relu, x); }

Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b) {
  check_floating("where", a);
  check_floating("where", b);
  engine::check_same_dtype("where", {&a, &b});
  engine::check_same_device("where", {&condition, &a, &b});
  const Shape shape = broadcast_operands("where", {&condition, &a, &b});
  Tensor out = run_where(condition, a, b, shape, "where");
  if (engine::needs_grad({&a, &b}))
    engine::record(std::make_shared<WhereBackward>("where", condition, std::vector<Shape>{a.shape(), b.shape()},
                                                   std::vector<bool>{true, false}),
                   {&a, &b}, {&out});
  return out;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  check_floating("masked_fill", x);
  engine::check_same_device("masked_fill", {&x, &mask});
  ENGINE_CHECK(broadcast_operands("masked_fill", {&mask, &x}) == x.shape(), "masked_fill: mask ", mask.describe(),
               " does not broadcast to the shape of x ", x.describe());
  // The fill value as a one-element operand broadcast everywhere.
  const Tensor fill = Tensor::full({}, value, x.dtype(), x.device());
  Tensor out = run_where(mask, fill, x, x.shape(), "masked_fill");
  if (engine::needs_grad({&x}))
    engine::record(std::make_shared<WhereBackward>("masked_fill", mask, std::vector<Shape>{x.shape()},
                                                   std::vector<bool>{false}),
                   {&x}, {&out});
  return out;
}

}  // namespace ops
