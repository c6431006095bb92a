// kl_div: checks, device dispatch and the backward node. Kernels: ops/cpu/kl_div.h, ops/cuda/kl_div.h.
#include "ops/kl_div.h"

#include <memory>

#include "engine/autograd.h"
#include "ops/cpu/kl_div.h"
#include "ops/cuda_kernels.h"

namespace ops {

namespace {

class KlDivBackward final : public engine::Node {
 public:
  KlDivBackward(Tensor log_q, Tensor log_p) : log_q_(std::move(log_q)), log_p_(std::move(log_p)) {}
  std::string name() const override { return "KlDivBackward"; }

  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    const int64_t n = log_q_.numel();
    Tensor grad_q = next_edges[0].node ? Tensor::empty(log_q_.shape(), log_q_.dtype(), log_q_.device()) : Tensor();
    Tensor grad_p = next_edges[1].node ? Tensor::empty(log_p_.shape(), log_p_.dtype(), log_p_.device()) : Tensor();
    if (log_q_.device().is_cuda()) {
      // The upstream scalar stays on the device: the kernel divides it by n.
      cuda::kl_div_backward(grad_q, grad_p, log_q_, log_p_, grads[0].contiguous());
      return {grad_q, grad_p};
    }
    const double scale = n > 0 ? grads[0].item() / double(n) : 0.0;
    ENGINE_DISPATCH_FLOAT(log_q_.dtype(), "kl_div", [&] {
      cpu::kl_div_backward<scalar_t>(grad_q.defined() ? grad_q.data<scalar_t>() : nullptr,
                                     grad_p.defined() ? grad_p.data<scalar_t>() : nullptr, log_q_.data<scalar_t>(),
                                     log_p_.data<scalar_t>(), scale, n);
    });
    return {grad_q, grad_p};
  }
  void release_saved() override {
    log_q_ = Tensor();
    log_p_ = Tensor();
  }

 private:
  Tensor log_q_, log_p_;  // same shape, contiguous, detached
};

}  // namespace

Tensor kl_div(const Tensor& input_log_q, const Tensor& target_log_p) {
  ENGINE_CHECK(input_log_q.defined() && target_log_p.defined(), "kl_div: undefined input or target");
  ENGINE_CHECK(input_log_q.shape() == target_log_p.shape(), "kl_div: input ", input_log_q.describe(),
               " and target ", target_log_p.describe(), " must have the same shape");
  engine::check_same_device("kl_div", {&input_log_q, &target_log_p});
  engine::check_same_dtype("kl_div", {&input_log_q, &target_log_p});
  ENGINE_CHECK(engine::is_floating(input_log_q.dtype()), "kl_div: expected f32 or f64, got ", input_log_q.describe());

  const Tensor log_q = input_log_q.detach().contiguous(), log_p = target_log_p.detach().contiguous();
  const int64_t n = log_q.numel();
  Tensor out;
  if (log_q.device().is_cuda()) {
    out = Tensor::empty({}, log_q.dtype(), log_q.device());
    cuda::kl_div_forward(out, log_q, log_p);
  } else {
    double total = 0.0;
    ENGINE_DISPATCH_FLOAT(log_q.dtype(), "kl_div", [&] {
      total = cpu::kl_div_sum<scalar_t>(log_q.data<scalar_t>(), log_p.data<scalar_t>(), n);
    });
    out = Tensor::full({}, n > 0 ? total / double(n) : 0.0, log_q.dtype(), log_q.device());
  }

  if (engine::needs_grad({&input_log_q, &target_log_p}))
    engine::record(std::make_shared<KlDivBackward>(log_q, log_p), {&input_log_q, &target_log_p}, {&out});
  return out;
}

}  // namespace ops
