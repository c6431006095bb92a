// Softmax and log-softmax: checks, device dispatch and the backward node. Kernels: ops/cpu/softmax.h.
//
// x: (..., R, ...) with R the softmax dimension. The kernels see x as a contiguous (O, R, I) array:
// O = product of the dims before R, I = product of the dims after (I = 1 for the last dim).
#include "ops/softmax.h"

#include <string>

#include "engine/autograd.h"
#include "ops/cpu/softmax.h"
#include "ops/cuda_kernels.h"

namespace ops {

namespace {

using engine::Node;
using engine::Shape;

struct SoftmaxLayout {
  int64_t outer = 1, reduce = 1, inner = 1;
};

SoftmaxLayout softmax_layout(const Shape& shape, int64_t dim) {
  SoftmaxLayout layout;
  for (int64_t d = 0; d < int64_t(shape.size()); ++d)
    (d < dim ? layout.outer : d == dim ? layout.reduce : layout.inner) *= shape[size_t(d)];
  return layout;
}

// ---- Device dispatch: the one place per kernel where a device picks its implementation. ----

void run_softmax(const Tensor& y, const Tensor& x, const SoftmaxLayout& l, bool log, const char* op) {
  if (x.device().is_cuda()) {
    cuda::softmax_forward(op, y, x, l.outer, l.reduce, l.inner, log);
    return;
  }
  ENGINE_DISPATCH_FLOAT(x.dtype(), op, [&] {
    cpu::softmax_forward<scalar_t>(y.data<scalar_t>(), x.data<scalar_t>(), l.outer, l.reduce, l.inner, log);
  });
}

Tensor run_softmax_backward(const Tensor& grad_y, const Tensor& y, const SoftmaxLayout& l, bool log, const char* op) {
  Tensor grad_x = Tensor::empty(y.shape(), y.dtype(), y.device());
  const Tensor g = grad_y.contiguous();
  if (y.device().is_cuda()) {
    cuda::softmax_backward(op, grad_x, g, y, l.outer, l.reduce, l.inner, log);
    return grad_x;
  }
  ENGINE_DISPATCH_FLOAT(y.dtype(), op, [&] {
    cpu::softmax_backward<scalar_t>(grad_x.data<scalar_t>(), g.data<scalar_t>(), y.data<scalar_t>(), l.outer,
                                    l.reduce, l.inner, log);
  });
  return grad_x;
}

// Gradient of softmax / log_softmax, computed from the saved output (data only).
class SoftmaxBackward final : public Node {
 public:
  SoftmaxBackward(const Tensor& y, SoftmaxLayout layout, bool log)
      : y_(y.detach()), layout_(layout), log_(log) {}
  std::string name() const override { return log_ ? "LogSoftmaxBackward" : "SoftmaxBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    return {run_softmax_backward(grads[0], y_, layout_, log_, log_ ? "log_softmax" : "softmax")};
  }
  void release_saved() override { y_ = Tensor(); }

 private:
  Tensor y_;  // the forward output, contiguous
  SoftmaxLayout layout_;
  bool log_;
};

Tensor softmax_impl(const Tensor& x, int64_t dim, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  ENGINE_CHECK(engine::is_floating(x.dtype()), op, ": expected a floating tensor (f32 or f64), got ", x.describe());
  const int64_t d = engine::wrap_dim(dim, x.dim(), op);
  ENGINE_CHECK(x.size(d) > 0, op, ": dimension ", dim, " of ", x.describe(),
               " has size 0; there is nothing to normalise");
  const SoftmaxLayout layout = softmax_layout(x.shape(), d);
  const Tensor input = x.detach().contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  run_softmax(y, input, layout, log, op);
  if (engine::needs_grad({&x})) engine::record(std::make_shared<SoftmaxBackward>(y, layout, log), {&x}, {&y});
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true); }

}  // namespace ops
