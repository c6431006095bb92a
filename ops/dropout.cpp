// dropout: checks, the generator's counter reservation, device dispatch and the backward node,
// which regenerates the mask from the saved (seed, offset). Kernels: ops/cpu/dropout.h,
// ops/cuda/dropout.h.
#include "ops/dropout.h"

#include <memory>

#include "engine/autograd.h"
#include "ops/cpu/dropout.h"
#include "ops/cuda_kernels.h"

namespace ops {

namespace {

// out = in ⊙ mask / (1 − p) for a contiguous copy of `in`, on in's device.
Tensor dropout_apply(const Tensor& in, double p, uint64_t seed, uint64_t offset) {
  const Tensor in_c = in.detach().contiguous();
  Tensor out = Tensor::empty(in.shape(), in.dtype(), in.device());
  if (in.device().is_cuda()) {
    cuda::dropout_apply(out, in_c, p, seed, offset);
    return out;
  }
  ENGINE_DISPATCH_FLOAT(in.dtype(), "dropout", [&] {
    cpu::dropout_apply<scalar_t>(out.data<scalar_t>(), in_c.data<scalar_t>(), in.numel(), p, seed, offset);
  });
  return out;
}

// dx = dy ⊙ mask / (1 − p), with the mask drawn again from the same counters.
class DropoutBackward final : public engine::Node {
 public:
  DropoutBackward(double p, uint64_t seed, uint64_t offset) : p_(p), seed_(seed), offset_(offset) {}
  std::string name() const override { return "DropoutBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    return {dropout_apply(grads[0], p_, seed_, offset_)};
  }

 private:
  double p_;
  uint64_t seed_, offset_;
};

}  // namespace

Tensor dropout(const Tensor& x, double p, engine::Generator& gen, bool training) {
  ENGINE_CHECK(x.defined(), "dropout: undefined input");
  ENGINE_CHECK(p >= 0.0 && p <= 1.0, "dropout: p must be in [0, 1], got ", p);
  ENGINE_CHECK(engine::is_floating(x.dtype()), "dropout: expected f32 or f64, got ", x.describe());
  if (!training || p == 0.0) return x;

  const uint64_t seed = gen.seed();
  const uint64_t offset = gen.reserve(engine::random_blocks(engine::RandomDistribution::bernoulli, uint64_t(x.numel())));
  Tensor out = dropout_apply(x, p, seed, offset);
  if (engine::needs_grad({&x})) engine::record(std::make_shared<DropoutBackward>(p, seed, offset), {&x}, {&out});
  return out;
}

}  // namespace ops
