// The fused MLP (ops/mlp.h): shape checks, the two fully connected layers (linear's forward,
// ops/fully_connected.h), and the backward node. Backward kernels: on the CPU linear's GEMMs and
// GELU gradient (ops/cpu/matmul.h), on CUDA cuBLASLt through ops/cuda/matmul.h (weight gradients)
// and ops/cuda/mlp.h (DGELU).
//
// Gradient convention: x's gradient is returned (=); the weights' go into their .grad in place where
// the engine allows it, as linear's (ops/fully_connected.h).
//
// Legend: R = rows (x's leading dims folded), C = in features, F = hidden features, O = out features.
#include "ops/mlp.h"

#include <memory>
#include <tuple>
#include <utility>

#include "engine/autograd.h"
#include "ops/cpu/matmul.h"
#include "ops/cuda_kernels.h"
#include "ops/elementwise.h"
#include "ops/fully_connected.h"
#include "ops/matmul.h"
#include "ops/precision.h"

namespace ops {

namespace {

using engine::Dtype;
using engine::Shape;

// Whether products of `dtype` in `precision` take bf16 operands (f32 only; f64 is the gradient checks').
bool on_bf16(Dtype dtype, Precision precision) { return dtype == Dtype::f32 && precision == Precision::bf16; }

// grad_pre: (R, F) = (grad_y: (R, O) · proj_weight: (O, F)) ⊙ gelu'(pre: (R, F)). On CUDA one GEMM
// with the DGELU epilogue; on the CPU the product, then the gelu gradient (linear's two steps).
Tensor pre_activation_gradient(const Tensor& grad_y, const Tensor& proj_weight, const Tensor& pre,
                               Precision precision) {
  if (grad_y.device().is_cuda()) {
    Tensor grad_pre = Tensor::empty(pre.shape(), pre.dtype(), pre.device());
    cuda::mlp_pre_activation_gradient(grad_pre, grad_y, proj_weight, pre, on_bf16(pre.dtype(), precision));
    return grad_pre;
  }
  const PrecisionScope products(precision);
  Tensor grad_pre = matmul(grad_y, proj_weight);  // the hidden gradient, overwritten in place below
  ENGINE_DISPATCH_FLOAT(pre.dtype(), "mlp", [&] {
    cpu::gelu_backward<scalar_t>(grad_pre.data<scalar_t>(), grad_pre.data<scalar_t>(), pre.data<scalar_t>(),
                                 pre.numel());
  });
  return grad_pre;
}

// pre = x·W1ᵀ + b1, hidden = gelu(pre), y = hidden·W2ᵀ + b2:
//   dpre = (dy·W2) ⊙ gelu'(pre),  dW2 = dyᵀ·hidden,  db2 = Σ_rows dy,
//   dW1 = dpreᵀ·x,  db1 = Σ_rows dpre,  dx = dpre·W1.
class MlpBackward final : public engine::Node {
 public:
  MlpBackward(Tensor x_rows, Tensor fc_weight, Tensor proj_weight, Tensor pre, Tensor hidden, Shape x_shape,
              Precision precision)
      : x_rows_(std::move(x_rows)), fc_weight_(std::move(fc_weight)), proj_weight_(std::move(proj_weight)),
        pre_(std::move(pre)), hidden_(std::move(hidden)), x_shape_(std::move(x_shape)), precision_(precision) {}
  std::string name() const override { return "MlpBackward"; }

  // Inputs, in record order: x, fc_weight, fc_bias, proj_weight, proj_bias.
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    auto wanted = [&](size_t input) { return next_edges[input].node != nullptr; };
    const Tensor grad_y = grads[0].reshape({-1, proj_weight_.size(0)}).contiguous();  // (R, O)
    Tensor grad_x, grad_fc_weight, grad_fc_bias, grad_proj_weight, grad_proj_bias;
    if (wanted(3) || wanted(4)) {
      const Tensor hidden = hidden_.defined() ? hidden_ : gelu(pre_);  // (R, F), recomputed when not kept
      std::tie(grad_proj_weight, grad_proj_bias) =
          linear_parameter_gradients(*this, 3, grad_y, hidden, wanted(3), wanted(4), precision_);
    }
    hidden_ = Tensor();
    if (wanted(0) || wanted(1) || wanted(2)) {
      const Tensor grad_pre = pre_activation_gradient(grad_y, proj_weight_, pre_, precision_);  // (R, F)
      pre_ = Tensor();
      std::tie(grad_fc_weight, grad_fc_bias) =
          linear_parameter_gradients(*this, 1, grad_pre, x_rows_, wanted(1), wanted(2), precision_);
      if (wanted(0)) {
        const PrecisionScope products(precision_);
        grad_x = matmul(grad_pre, fc_weight_).reshape(x_shape_);
      }
    }
    return {grad_x, grad_fc_weight, grad_fc_bias, grad_proj_weight, grad_proj_bias};
  }
  void release_saved() override {
    x_rows_ = Tensor();
    fc_weight_ = Tensor();
    proj_weight_ = Tensor();
    pre_ = Tensor();
    hidden_ = Tensor();
  }

 private:
  Tensor x_rows_;       // (R, C), detached
  Tensor fc_weight_;    // (F, C), detached
  Tensor proj_weight_;  // (O, F), detached
  Tensor pre_;          // (R, F) pre-activation
  Tensor hidden_;       // (R, F) gelu(pre); undefined with recompute_gelu
  Shape x_shape_;
  Precision precision_;  // the forward's
};

// Each parameter must be `expected` (a vector or a matrix); the error names it and the shapes.
void check_parameter(const char* name, const Tensor& t, const Shape& expected, const Tensor& x) {
  ENGINE_CHECK(t.defined(), "mlp: ", name, " is undefined");
  ENGINE_CHECK(t.shape() == expected, "mlp: ", name, " is ", t.describe(), " but must be ",
               engine::shape_str(expected), " for input ", x.describe());
  engine::check_same_device("mlp", {&x, &t});
  engine::check_same_dtype("mlp", {&x, &t});
}

}  // namespace

Tensor mlp(const Tensor& x, const Tensor& fc_weight, const Tensor& fc_bias, const Tensor& proj_weight,
           const Tensor& proj_bias, bool recompute_gelu) {
  ENGINE_CHECK(x.defined() && fc_weight.defined() && proj_weight.defined(), "mlp: undefined input or weight");
  ENGINE_CHECK(fc_weight.dim() == 2 && proj_weight.dim() == 2, "mlp: weights must be matrices, got fc_weight ",
               fc_weight.describe(), " and proj_weight ", proj_weight.describe());
  const int64_t C = fc_weight.size(1), F = fc_weight.size(0), O = proj_weight.size(0);
  ENGINE_CHECK(x.dim() >= 1 && x.size(-1) == C, "mlp: input ", x.describe(), " does not end in in_features = ", C,
               " of fc_weight ", fc_weight.describe());
  ENGINE_CHECK(x.numel() > 0 && F > 0 && O > 0, "mlp: empty input ", x.describe(), " or weights fc_weight ",
               fc_weight.describe(), ", proj_weight ", proj_weight.describe());
  ENGINE_CHECK(engine::is_floating(x.dtype()), "mlp: expected f32 or f64, got ", x.describe());
  check_parameter("fc_bias", fc_bias, {F}, x);
  check_parameter("proj_weight", proj_weight, {O, F}, x);
  check_parameter("proj_bias", proj_bias, {O}, x);
  check_parameter("fc_weight", fc_weight, {F, C}, x);
  Shape out_shape = x.shape();
  out_shape.back() = O;

  const Precision products = precision();  // the forward's and the backward's
  const Tensor x_rows = x.detach().reshape({-1, C}).contiguous();  // (R, C), a view when x is contiguous
  const Tensor fc_w = fc_weight.detach().contiguous(), proj_w = proj_weight.detach().contiguous();
  const int64_t R = x_rows.size(0);
  Tensor pre = Tensor::empty({R, F}, x.dtype(), x.device());
  Tensor hidden = Tensor::empty({R, F}, x.dtype(), x.device());
  Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());
  fully_connected_forward(x_rows, fc_w, fc_bias.detach(), true, hidden, pre, products);
  fully_connected_forward(hidden, proj_w, proj_bias.detach(), false, y.reshape({R, O}), Tensor(), products);

  if (engine::needs_grad({&x, &fc_weight, &fc_bias, &proj_weight, &proj_bias})) {
    auto node = std::make_shared<MlpBackward>(x_rows, fc_w, proj_w, pre, recompute_gelu ? Tensor() : hidden, x.shape(),
                                              products);
    engine::record(node, {&x, &fc_weight, &fc_bias, &proj_weight, &proj_bias}, {&y});
  }
  return y;
}

}  // namespace ops
