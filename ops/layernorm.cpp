// layer_norm: checks, device dispatch and the backward node. Kernels: ops/cpu/layernorm.h,
// ops/cuda/layernorm.h.
//
// Legend: N = rows (leading dims of x folded), C = channels (the normalised last dim).
#include "ops/layernorm.h"

#include <memory>

#include "engine/autograd.h"
#include "ops/cpu/layernorm.h"
#include "ops/cuda_kernels.h"

namespace ops {

namespace {

// Saves x (contiguous), weight and the per-row statistics; recomputes x̂ in the backward.
class LayerNormBackward final : public engine::Node {
 public:
  LayerNormBackward(Tensor x, Tensor weight, Tensor mean, Tensor rstd)
      : x_(std::move(x)), weight_(std::move(weight)), mean_(std::move(mean)), rstd_(std::move(rstd)) {}
  std::string name() const override { return "LayerNormBackward"; }

  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    const Tensor grad_out = grads[0].contiguous();  // (..., C)
    const int64_t C = x_.size(-1), N = x_.numel() / C;
    const auto dtype = x_.dtype();
    const auto device = x_.device();
    Tensor grad_x = next_edges[0].node ? Tensor::empty(x_.shape(), dtype, device) : Tensor();
    Tensor grad_weight = next_edges[1].node ? Tensor::empty({C}, dtype, device) : Tensor();
    Tensor grad_bias = next_edges.size() > 2 && next_edges[2].node ? Tensor::empty({C}, dtype, device) : Tensor();
    if (device.is_cuda()) {
      cuda::layernorm_backward(grad_x, grad_weight, grad_bias, grad_out, x_, weight_, mean_, rstd_);
    } else {
      ENGINE_DISPATCH_FLOAT(dtype, "layer_norm", [&] {
        auto ptr = [](const Tensor& t) { return t.defined() ? t.data<scalar_t>() : nullptr; };
        cpu::layernorm_backward<scalar_t>(ptr(grad_x), ptr(grad_weight), ptr(grad_bias), grad_out.data<scalar_t>(),
                                          x_.data<scalar_t>(), weight_.data<scalar_t>(), mean_.data<scalar_t>(),
                                          rstd_.data<scalar_t>(), N, C);
      });
    }
    return {grad_x, grad_weight, grad_bias};
  }
  void release_saved() override {
    x_ = Tensor();
    weight_ = Tensor();
    mean_ = Tensor();
    rstd_ = Tensor();
  }

 private:
  Tensor x_;       // (..., C) contiguous, detached
  Tensor weight_;  // (C) contiguous, detached
  Tensor mean_;    // (N)
  Tensor rstd_;    // (N)
};

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  ENGINE_CHECK(x.defined() && weight.defined(), "layer_norm: undefined input or weight");
  ENGINE_CHECK(x.dim() >= 1, "layer_norm: input must have at least 1 dim, got ", x.describe());
  const int64_t C = x.size(-1);
  ENGINE_CHECK(weight.dim() == 1 && weight.size(0) == C, "layer_norm: weight ", weight.describe(),
               " must be (", C, ") for input ", x.describe());
  ENGINE_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == C), "layer_norm: bias ", bias.describe(),
               " must be (", C, ") for input ", x.describe());
  ENGINE_CHECK(eps >= 0, "layer_norm: eps must be >= 0, got ", eps);
  engine::check_same_device("layer_norm", {&x, &weight});
  engine::check_same_dtype("layer_norm", {&x, &weight});
  if (bias.defined()) {
    engine::check_same_device("layer_norm", {&x, &bias});
    engine::check_same_dtype("layer_norm", {&x, &bias});
  }
  ENGINE_CHECK(engine::is_floating(x.dtype()), "layer_norm: expected f32 or f64, got ", x.describe());

  const Tensor x_c = x.detach().contiguous(), weight_c = weight.detach().contiguous();
  const Tensor bias_c = bias.defined() ? bias.detach().contiguous() : Tensor();
  const int64_t N = C == 0 ? 0 : x.numel() / C;
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor mean = Tensor::empty({N}, x.dtype(), x.device()), rstd = Tensor::empty({N}, x.dtype(), x.device());
  if (x.device().is_cuda()) {
    cuda::layernorm_forward(out, mean, rstd, x_c, weight_c, bias_c, eps);
  } else {
    ENGINE_DISPATCH_FLOAT(x.dtype(), "layer_norm", [&] {
      cpu::layernorm_forward<scalar_t>(out.data<scalar_t>(), mean.data<scalar_t>(), rstd.data<scalar_t>(),
                                       x_c.data<scalar_t>(), weight_c.data<scalar_t>(),
                                       bias_c.defined() ? bias_c.data<scalar_t>() : nullptr, N, C, eps);
    });
  }

  const bool has_bias = bias.defined();
  if (has_bias ? engine::needs_grad({&x, &weight, &bias}) : engine::needs_grad({&x, &weight})) {
    auto node = std::make_shared<LayerNormBackward>(x_c, weight_c, mean, rstd);
    if (has_bias) engine::record(node, {&x, &weight, &bias}, {&out});
    else engine::record(node, {&x, &weight}, {&out});
  }
  return out;
}

}  // namespace ops
