// rotary: checks, device dispatch and the backward node (ops/rotary.h). Kernels: ops/cpu/rotary.h,
// ops/cuda/rotary.h.
#include "ops/rotary.h"

#include "engine/autograd.h"
#include "ops/cpu/rotary.h"
#include "ops/cuda_kernels.h"

namespace ops {

namespace {

// ---- Device dispatch: the one place per kernel where a device picks its implementation. ----

void run_rotary_forward(const Tensor& x, const Tensor& angles, const Tensor& out, bool per_head) {
  const int64_t B = x.size(0), H = x.size(1), T = x.size(2), D = x.size(3), P = angles.size(-1);
  if (x.device().is_cuda()) {
    cuda::rotary_forward(x, angles, out, per_head);
    return;
  }
  ENGINE_DISPATCH_FLOAT(x.dtype(), "rotary", [&] {
    cpu::rotary_forward<scalar_t>(x.data<scalar_t>(), angles.data<scalar_t>(), out.data<scalar_t>(), B, H, T, D, P,
                                  per_head);
  });
}

// grad_angles may be undefined (the angles need no gradient).
void run_rotary_backward(const Tensor& grad_out, const Tensor& x, const Tensor& angles, const Tensor& grad_x,
                         const Tensor& grad_angles, bool per_head) {
  const int64_t B = x.size(0), H = x.size(1), T = x.size(2), D = x.size(3), P = angles.size(-1);
  if (x.device().is_cuda()) {
    cuda::rotary_backward(grad_out, x, angles, grad_x, grad_angles, per_head);
    return;
  }
  ENGINE_DISPATCH_FLOAT(x.dtype(), "rotary backward", [&] {
    scalar_t* angle_grad = grad_angles.defined() ? grad_angles.data<scalar_t>() : nullptr;
    cpu::rotary_backward<scalar_t>(grad_out.data<scalar_t>(), x.data<scalar_t>(), angles.data<scalar_t>(),
                                   grad_x.data<scalar_t>(), angle_grad, B, H, T, D, P, per_head);
  });
}

// Gradient of a rotation: rotate the output gradient back (by −θ); the angles get
// Σ_b (∂L/∂out)·(∂out/∂θ) with ∂out/∂θ = the pair rotated by 90°.
class RotaryBackward final : public engine::Node {
 public:
  RotaryBackward(Tensor x, Tensor angles, bool need_angles)
      : x_(std::move(x)), angles_(std::move(angles)), need_angles_(need_angles) {}
  std::string name() const override { return "RotaryBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    ENGINE_CHECK(x_.defined(), "RotaryBackward: saved tensors were already freed (backward called twice?)");
    Tensor grad_out = grads[0].contiguous();
    Tensor grad_x = Tensor::empty(x_.shape(), x_.dtype(), x_.device());
    // Every angle's gradient is written by the kernels.
    Tensor grad_angles = need_angles_ ? Tensor::empty(angles_.shape(), angles_.dtype(), angles_.device()) : Tensor();
    run_rotary_backward(grad_out, x_, angles_, grad_x, grad_angles, angles_.dim() == 3);
    return {grad_x, grad_angles};
  }
  void release_saved() override {
    x_ = Tensor();
    angles_ = Tensor();
  }

 private:
  Tensor x_, angles_;
  bool need_angles_;
};

}  // namespace

Tensor rotary(const Tensor& x_in, const Tensor& angles_in) {
  ENGINE_CHECK(x_in.dim() == 4, "rotary: x must be (B, H, T, D), got ", x_in.describe());
  ENGINE_CHECK(angles_in.dim() == 2 || angles_in.dim() == 3, "rotary: angles must be (T, D/2) or (H, T, D/2), got ",
               angles_in.describe());
  engine::check_same_dtype("rotary", {&x_in, &angles_in});
  engine::check_same_device("rotary", {&x_in, &angles_in});
  const int64_t H = x_in.size(1), T = x_in.size(2), D = x_in.size(3), P = angles_in.size(-1);
  const bool per_head = angles_in.dim() == 3;
  ENGINE_CHECK(angles_in.size(-2) == T && 2 * P <= D && (!per_head || angles_in.size(0) == H), "rotary: angles ",
               angles_in.describe(), " do not fit x ", x_in.describe(), " (need (", per_head ? "H, " : "", "T, <= D/2))");
  Tensor x = x_in.contiguous(), angles = angles_in.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  run_rotary_forward(x, angles, out, per_head);
  if (engine::needs_grad({&x_in, &angles_in})) {
    auto node = std::make_shared<RotaryBackward>(x, angles, angles_in.requires_grad());
    engine::record(node, {&x_in, &angles_in}, {&out});
  }
  return out;
}

}  // namespace ops
