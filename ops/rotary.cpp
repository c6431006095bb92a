#include "ops/rotary.h"

#include "engine/autograd.h"
#include "ops/cpu/rotary.h"

namespace ops {

namespace {

void check_cpu(const Tensor& x) {
  ENGINE_CHECK(x.device().is_cpu(), "rotary: CUDA kernels are not built yet (", x.describe(), ")");
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
    Tensor grad_angles = need_angles_ ? Tensor::zeros(angles_.shape(), angles_.dtype()) : Tensor();
    const int64_t B = x_.size(0), H = x_.size(1), T = x_.size(2), D = x_.size(3);
    const bool per_head = angles_.dim() == 3;
    ENGINE_DISPATCH_FLOAT(x_.dtype(), "rotary backward", [&] {
      cpu::rotary_backward<scalar_t>(grad_out.data<scalar_t>(), x_.data<scalar_t>(), angles_.data<scalar_t>(),
                                     grad_x.data<scalar_t>(), need_angles_ ? grad_angles.data<scalar_t>() : nullptr,
                                     B, H, T, D, angles_.size(-1), per_head);
    });
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
  check_cpu(x_in);
  const int64_t B = x_in.size(0), H = x_in.size(1), T = x_in.size(2), D = x_in.size(3), P = angles_in.size(-1);
  const bool per_head = angles_in.dim() == 3;
  ENGINE_CHECK(angles_in.size(-2) == T && 2 * P <= D && (!per_head || angles_in.size(0) == H), "rotary: angles ",
               angles_in.describe(), " do not fit x ", x_in.describe(), " (need (", per_head ? "H, " : "", "T, <= D/2))");
  Tensor x = x_in.contiguous(), angles = angles_in.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  ENGINE_DISPATCH_FLOAT(x.dtype(), "rotary", [&] {
    cpu::rotary_forward<scalar_t>(x.data<scalar_t>(), angles.data<scalar_t>(), out.data<scalar_t>(), B, H, T, D, P,
                                  per_head);
  });
  if (engine::needs_grad({&x_in, &angles_in})) {
    auto node = std::make_shared<RotaryBackward>(x, angles, angles_in.requires_grad());
    engine::record(node, {&x_in, &angles_in}, {&out});
  }
  return out;
}

}  // namespace ops
