// layer_norm and residual_layer_norm: checks, device dispatch and the one backward node both
// record. Kernels: ops/cpu/layernorm.h, ops/cuda/layernorm.h.
//
// Legend: N = rows (leading dims of x folded), C = channels (the normalised last dim).
#include "ops/layernorm.h"

#include <memory>

#include "engine/autograd.h"
#include "ops/cpu/layernorm.h"
#include "ops/cuda_kernels.h"

namespace ops {

namespace {

// The backward of layer_norm (inputs x, weight[, bias]; output y) and of residual_layer_norm
// (inputs x, branch, weight[, bias]; outputs y, residual). Saves the normalised rows (x, or the
// residual), the weight and the per-row statistics; recomputes x̂ in the backward. The fused op's
// x and branch both get the residual's gradient plus the norm's: one tensor, written once.
class LayerNormBackward final : public engine::Node {
 public:
  LayerNormBackward(Tensor input, Tensor weight, Tensor mean, Tensor rstd, bool fused_residual)
      : input_(std::move(input)), weight_(std::move(weight)), mean_(std::move(mean)), rstd_(std::move(rstd)),
        fused_residual_(fused_residual) {}
  std::string name() const override { return fused_residual_ ? "ResidualLayerNormBackward" : "LayerNormBackward"; }

  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    const Tensor grad_out = grads[0].contiguous();                                    // (..., C)
    const Tensor grad_residual = fused_residual_ ? grads[1].contiguous() : Tensor();  // (..., C)
    const int64_t C = input_.size(-1), N = input_.numel() / C;
    const auto dtype = input_.dtype();
    const auto device = input_.device();
    const size_t weight_input = fused_residual_ ? 2 : 1;
    const bool input_grad = next_edges[0].node || (fused_residual_ && next_edges[1].node);
    auto wanted = [&](size_t input) { return next_edges.size() > input && next_edges[input].node; };
    Tensor grad_x = input_grad ? Tensor::empty(input_.shape(), dtype, device) : Tensor();
    Tensor grad_weight = wanted(weight_input) ? Tensor::empty({C}, dtype, device) : Tensor();
    Tensor grad_bias = wanted(weight_input + 1) ? Tensor::empty({C}, dtype, device) : Tensor();
    if (device.is_cuda()) {
      cuda::layernorm_backward(grad_x, grad_weight, grad_bias, grad_residual, grad_out, input_, weight_, mean_, rstd_);
    } else {
      ENGINE_DISPATCH_FLOAT(dtype, fused_residual_ ? "residual_layer_norm" : "layer_norm", [&] {
        auto ptr = [](const Tensor& t) { return t.defined() ? t.data<scalar_t>() : nullptr; };
        cpu::layernorm_backward<scalar_t>(ptr(grad_x), ptr(grad_weight), ptr(grad_bias), ptr(grad_residual),
                                          grad_out.data<scalar_t>(), input_.data<scalar_t>(),
                                          weight_.data<scalar_t>(), mean_.data<scalar_t>(), rstd_.data<scalar_t>(),
                                          N, C);
      });
    }
    if (fused_residual_) return {grad_x, grad_x, grad_weight, grad_bias};
    return {grad_x, grad_weight, grad_bias};
  }
  void release_saved() override {
    input_ = Tensor();
    weight_ = Tensor();
    mean_ = Tensor();
    rstd_ = Tensor();
  }

 private:
  Tensor input_;   // (..., C) contiguous, detached: x, or the fused op's residual
  Tensor weight_;  // (C) contiguous, detached
  Tensor mean_;    // (N)
  Tensor rstd_;    // (N)
  bool fused_residual_;
};

void check_arguments(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  ENGINE_CHECK(x.defined() && weight.defined(), op, ": undefined input or weight");
  ENGINE_CHECK(x.dim() >= 1, op, ": input must have at least 1 dim, got ", x.describe());
  const int64_t C = x.size(-1);
  ENGINE_CHECK(weight.dim() == 1 && weight.size(0) == C, op, ": weight ", weight.describe(), " must be (", C,
               ") for input ", x.describe());
  ENGINE_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == C), op, ": bias ", bias.describe(),
               " must be (", C, ") for input ", x.describe());
  ENGINE_CHECK(eps >= 0, op, ": eps must be >= 0, got ", eps);
  engine::check_same_device(op, {&x, &weight});
  engine::check_same_dtype(op, {&x, &weight});
  if (bias.defined()) {
    engine::check_same_device(op, {&x, &bias});
    engine::check_same_dtype(op, {&x, &bias});
  }
  ENGINE_CHECK(engine::is_floating(x.dtype()), op, ": expected f32 or f64, got ", x.describe());
}

// What the forward kernels produce: the norm, and the sum it normalised when a branch was added.
struct Forward {
  Tensor out;       // (..., C)
  Tensor residual;  // (..., C), undefined without a branch
  Tensor mean;      // (N)
  Tensor rstd;      // (N)
};

// The forward kernels on contiguous, detached operands; branch may be undefined (a plain norm).
Forward run_forward(const char* op, const Tensor& x, const Tensor& branch, const Tensor& weight, const Tensor& bias,
                    double eps) {
  const int64_t C = x.size(-1), N = C == 0 ? 0 : x.numel() / C;
  Forward f;
  f.out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (branch.defined()) f.residual = Tensor::empty(x.shape(), x.dtype(), x.device());
  f.mean = Tensor::empty({N}, x.dtype(), x.device());
  f.rstd = Tensor::empty({N}, x.dtype(), x.device());
  if (x.device().is_cuda()) {
    cuda::layernorm_forward(f.out, f.mean, f.rstd, f.residual, x, branch, weight, bias, eps);
  } else {
    ENGINE_DISPATCH_FLOAT(x.dtype(), op, [&] {
      auto ptr = [](const Tensor& t) { return t.defined() ? t.data<scalar_t>() : nullptr; };
      cpu::layernorm_forward<scalar_t>(f.out.data<scalar_t>(), f.mean.data<scalar_t>(), f.rstd.data<scalar_t>(),
                                       ptr(f.residual), x.data<scalar_t>(), ptr(branch), weight.data<scalar_t>(),
                                       ptr(bias), N, C, eps);
    });
  }
  return f;
}

Tensor contiguous_detached(const Tensor& t) { return t.defined() ? t.detach().contiguous() : Tensor(); }

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  check_arguments("layer_norm", x, weight, bias, eps);
  const Tensor x_c = contiguous_detached(x), weight_c = contiguous_detached(weight);
  Forward f = run_forward("layer_norm", x_c, Tensor(), weight_c, contiguous_detached(bias), eps);

  const bool has_bias = bias.defined();
  if (has_bias ? engine::needs_grad({&x, &weight, &bias}) : engine::needs_grad({&x, &weight})) {
    auto node = std::make_shared<LayerNormBackward>(x_c, weight_c, f.mean, f.rstd, false);
    if (has_bias) engine::record(node, {&x, &weight, &bias}, {&f.out});
    else engine::record(node, {&x, &weight}, {&f.out});
  }
  return f.out;
}

ResidualLayerNorm residual_layer_norm(const Tensor& x, const Tensor& branch, const Tensor& weight, const Tensor& bias,
                                      double eps) {
  check_arguments("residual_layer_norm", x, weight, bias, eps);
  ENGINE_CHECK(branch.defined() && branch.shape() == x.shape(), "residual_layer_norm: branch ", branch.describe(),
               " must have the shape of the residual stream ",
               x.describe());
  engine::check_same_device("residual_layer_norm", {&x, &branch});
  engine::check_same_dtype("residual_layer_norm", {&x, &branch});
  const Tensor weight_c = contiguous_detached(weight);
  Forward f = run_forward("residual_layer_norm", contiguous_detached(x), contiguous_detached(branch), weight_c,
                          contiguous_detached(bias), eps);

  const bool has_bias = bias.defined();
  if (has_bias ? engine::needs_grad({&x, &branch, &weight, &bias}) : engine::needs_grad({&x, &branch, &weight})) {
    auto node = std::make_shared<LayerNormBackward>(f.residual.detach(), weight_c, f.mean, f.rstd, true);
    if (has_bias) engine::record(node, {&x, &branch, &weight, &bias}, {&f.out, &f.residual});
    else engine::record(node, {&x, &branch, &weight}, {&f.out, &f.residual});
  }
  return {f.residual, f.out};
}

}  // namespace ops
