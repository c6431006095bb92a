// Reductions: dimension handling, device dispatch and backward nodes. Kernels: ops/cpu/reduce.h.
//
// Every reduction views its input as a contiguous (O, R, I) array (O = outer kept, R = reduced,
// I = inner kept). That is free when the input is contiguous and the reduced dims are adjacent
// (the common cases: the last dims, or the leading dims of a gradient); otherwise the input is
// copied once with the reduced dims moved last.
#include "ops/reduce.h"

#include <string>

#include "engine/autograd.h"
#include "engine/strided_loop.h"
#include "ops/cpu/reduce.h"
#include "ops/cuda_kernels.h"

namespace ops {

namespace {

using engine::Node;
using engine::Shape;

void check_floating(const char* op, const Tensor& x) {
  ENGINE_CHECK(engine::is_floating(x.dtype()), op, ": expected a floating tensor (f32 or f64), got ", x.describe());
}

// reduced[d] is true for each dimension in `dims` (negative counts from the end); empty = all.
std::vector<bool> reduced_dims(const char* op, const Tensor& x, const std::vector<int64_t>& dims) {
  std::vector<bool> reduced(size_t(x.dim()), dims.empty());
  for (int64_t d : dims) {
    const size_t wrapped = size_t(engine::wrap_dim(d, x.dim(), op));
    ENGINE_CHECK(!reduced[wrapped], op, ": dimension ", d, " is listed twice for ", x.describe());
    reduced[wrapped] = true;
  }
  return reduced;
}

// The output shape: reduced dims become 1 (keepdim) or disappear.
Shape reduced_shape(const Shape& shape, const std::vector<bool>& reduced, bool keepdim) {
  Shape out;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (!reduced[d]) out.push_back(shape[d]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

// x's data as a contiguous (outer, reduce, inner) array with the reduced dims in the middle.
struct ReduceLayout {
  Tensor data;  // (O, R, I) in memory, detached from the graph
  int64_t outer = 1, reduce = 1, inner = 1;
};

ReduceLayout reduce_layout(const Tensor& x, const std::vector<bool>& reduced) {
  ReduceLayout layout;
  layout.data = x.detach().contiguous();
  const Shape& shape = x.shape();
  const int64_t rank = x.dim();
  // The span [first, last] of reduced dims that matter (size-1 dims never do).
  int64_t first = -1, last = -1;
  for (int64_t d = 0; d < rank; ++d)
    if (reduced[size_t(d)] && shape[size_t(d)] != 1) {
      if (first < 0) first = d;
      last = d;
    }
  bool adjacent = true;
  for (int64_t d = first + 1; d < last; ++d)
    if (!reduced[size_t(d)] && shape[size_t(d)] != 1) adjacent = false;
  if (first < 0) {  // only size-1 dims are reduced: every element is its own sum
    layout.outer = x.numel();
    return layout;
  }
  if (adjacent) {
    for (int64_t d = 0; d < rank; ++d) {
      const int64_t size = shape[size_t(d)];
      (d < first ? layout.outer : d <= last ? layout.reduce : layout.inner) *= size;
    }
    return layout;
  }
  // Scattered reduced dims: move them last and copy, giving (kept..., reduced...) = (O, R, 1).
  std::vector<int64_t> order;
  for (int64_t d = 0; d < rank; ++d)
    if (!reduced[size_t(d)]) {
      order.push_back(d);
      layout.outer *= shape[size_t(d)];
    }
  for (int64_t d = 0; d < rank; ++d)
    if (reduced[size_t(d)]) {
      order.push_back(d);
      layout.reduce *= shape[size_t(d)];
    }
  layout.data = layout.data.permute(order).contiguous();
  return layout;
}

// ---- Device dispatch: the one place per kernel where a device picks its implementation. ----

void run_sum(const Tensor& out, const ReduceLayout& layout, double divisor, const char* op) {
  if (out.device().is_cuda()) {
    cuda::sum_forward(op, out, layout.data, layout.outer, layout.reduce, layout.inner, divisor);
    return;
  }
  ENGINE_DISPATCH_FLOAT(out.dtype(), op, [&] {
    cpu::sum_forward<scalar_t>(out.data<scalar_t>(), layout.data.data<scalar_t>(), layout.outer, layout.reduce,
                               layout.inner, divisor);
  });
}

// grad_out broadcast back to `shape` and scaled; grad_out_strides walk grad_out over `shape`.
Tensor run_sum_backward(const Tensor& grad_out, const Shape& grad_out_strides, const Shape& shape, double scale,
                        const char* op) {
  Tensor grad = Tensor::empty(shape, grad_out.dtype(), grad_out.device());
  if (grad_out.device().is_cuda()) {
    cuda::sum_backward(op, grad, grad_out, grad_out_strides, scale);
    return grad;
  }
  ENGINE_DISPATCH_FLOAT(grad.dtype(), op, [&] {
    cpu::sum_backward<scalar_t>(grad.data<scalar_t>(), grad_out.data<scalar_t>(), shape, grad_out_strides, scale);
  });
  return grad;
}

void run_max(const Tensor& values, const Tensor& argmax, const ReduceLayout& layout) {
  if (values.device().is_cuda()) {
    cuda::max_forward(values, argmax, layout.data, layout.outer, layout.reduce, layout.inner);
    return;
  }
  ENGINE_DISPATCH_FLOAT(values.dtype(), "max", [&] {
    cpu::max_forward<scalar_t>(values.data<scalar_t>(), argmax.data<int64_t>(), layout.data.data<scalar_t>(),
                               layout.outer, layout.reduce, layout.inner);
  });
}

Tensor run_max_backward(const Tensor& grad_out, const Tensor& argmax, const Shape& shape, int64_t outer,
                        int64_t reduce, int64_t inner) {
  Tensor grad = Tensor::empty(shape, grad_out.dtype(), grad_out.device());
  const Tensor g = grad_out.contiguous();
  if (grad.device().is_cuda()) {
    cuda::max_backward(grad, g, argmax, outer, reduce, inner);
    return grad;
  }
  ENGINE_DISPATCH_FLOAT(grad.dtype(), "max", [&] {
    cpu::max_backward<scalar_t>(grad.data<scalar_t>(), g.data<scalar_t>(), argmax.data<int64_t>(), outer, reduce,
                                inner);
  });
  return grad;
}

// ---- Backward nodes ----

// Gradient of sum and mean: the output gradient repeated over the reduced dims (times 1/R for mean).
class SumBackward final : public Node {
 public:
  SumBackward(const char* op, Shape input_shape, std::vector<bool> reduced, bool keepdim, double scale)
      : op_(op), input_shape_(std::move(input_shape)), reduced_(std::move(reduced)), keepdim_(keepdim), scale_(scale) {}
  std::string name() const override { return op_ == std::string("sum") ? "SumBackward" : "MeanBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    const Tensor& g = grads[0];
    // Strides that walk g over the input's shape: 0 along the reduced dims.
    Shape strides(input_shape_.size(), 0);
    size_t g_dim = 0;
    for (size_t d = 0; d < input_shape_.size(); ++d) {
      if (!reduced_[d]) strides[d] = g.strides()[g_dim];
      if (!reduced_[d] || keepdim_) ++g_dim;
    }
    return {run_sum_backward(g, strides, input_shape_, scale_, op_)};
  }

 private:
  const char* op_;
  Shape input_shape_;
  std::vector<bool> reduced_;
  bool keepdim_;
  double scale_;
};

// Gradient of max: the output gradient goes to the argmax of each slice; zero elsewhere.
class MaxBackward final : public Node {
 public:
  MaxBackward(Shape input_shape, const Tensor& argmax, int64_t outer, int64_t reduce, int64_t inner)
      : input_shape_(std::move(input_shape)), argmax_(argmax), outer_(outer), reduce_(reduce), inner_(inner) {}
  std::string name() const override { return "MaxBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    return {run_max_backward(grads[0], argmax_, input_shape_, outer_, reduce_, inner_)};
  }
  void release_saved() override { argmax_ = Tensor(); }

 private:
  Shape input_shape_;
  Tensor argmax_;  // (O, I) i64, contiguous
  int64_t outer_, reduce_, inner_;
};

// sum (divide_by_count false) or mean over `dims`.
Tensor sum_or_mean(const char* op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim,
                   bool divide_by_count) {
  check_floating(op, x);
  const std::vector<bool> reduced = reduced_dims(op, x, dims);
  const ReduceLayout layout = reduce_layout(x, reduced);
  const double divisor = divide_by_count ? double(layout.reduce) : 1.0;
  Tensor out = Tensor::empty(reduced_shape(x.shape(), reduced, keepdim), x.dtype(), x.device());
  run_sum(out, layout, divisor, op);
  if (engine::needs_grad({&x}))
    engine::record(std::make_shared<SumBackward>(op, x.shape(), reduced, keepdim, 1.0 / divisor), {&x}, {&out});
  return out;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_or_mean("sum", x, dims, keepdim, false);
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_or_mean("mean", x, dims, keepdim, true);
}

Tensor max(const Tensor& x, int64_t dim, bool keepdim, Tensor* indices) {
  check_floating("max", x);
  const int64_t d = engine::wrap_dim(dim, x.dim(), "max");
  ENGINE_CHECK(x.size(d) > 0, "max: cannot take the maximum over dimension ", dim, " of size 0 of ", x.describe());
  const std::vector<bool> reduced = reduced_dims("max", x, {d});
  const ReduceLayout layout = reduce_layout(x, reduced);
  const Shape out_shape = reduced_shape(x.shape(), reduced, keepdim);
  Tensor values = Tensor::empty(out_shape, x.dtype(), x.device());
  Tensor argmax = Tensor::empty(out_shape, engine::Dtype::i64, x.device());
  run_max(values, argmax, layout);
  if (engine::needs_grad({&x}))
    engine::record(std::make_shared<MaxBackward>(x.shape(), argmax, layout.outer, layout.reduce, layout.inner), {&x},
                   {&values});
  if (indices) *indices = argmax;
  return values;
}

}  // namespace ops
