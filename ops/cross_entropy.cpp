// cross_entropy: checks (targets against V), reduction, device dispatch and the backward node.
// Kernels: ops/cpu/cross_entropy.h, ops/cuda/cross_entropy.h.
//
// Legend: N = rows (leading dims of the logits folded), V = classes.
#include "ops/cross_entropy.h"

#include <memory>

#include "engine/autograd.h"
#include "ops/cpu/cross_entropy.h"
#include "ops/cuda_kernels.h"

namespace ops {

namespace {

// Saves the logits and each row's max and Σ exp(x − max): the gradient is (softmax − target) times
// the upstream gradient, divided by the count of non-ignored targets for `mean`.
class CrossEntropyBackward final : public engine::Node {
 public:
  CrossEntropyBackward(Tensor logits, Tensor targets, Tensor row_max, Tensor row_sum, int64_t ignore_index,
                       double label_smoothing, Reduction reduction, int64_t count)
      : logits_(std::move(logits)), targets_(std::move(targets)), row_max_(std::move(row_max)),
        row_sum_(std::move(row_sum)), ignore_index_(ignore_index), label_smoothing_(label_smoothing),
        reduction_(reduction), count_(count) {}
  std::string name() const override { return "CrossEntropyBackward"; }

  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    const int64_t V = logits_.size(-1), N = row_max_.numel();
    const Tensor upstream = grads[0].contiguous();  // (...) for `none`, a scalar otherwise
    const int64_t stride = reduction_ == Reduction::none ? 1 : 0;
    Tensor grad_logits = Tensor::empty(logits_.shape(), logits_.dtype(), logits_.device());
    if (logits_.device().is_cuda()) {
      // The mean's division happens on the device: no host read of the upstream gradient.
      const double divisor = reduction_ == Reduction::mean && count_ > 0 ? double(count_) : 1.0;
      cuda::cross_entropy_backward(grad_logits, logits_, row_max_, row_sum_, targets_, upstream, stride, divisor,
                                   ignore_index_, label_smoothing_);
      return {grad_logits, Tensor()};
    }
    Tensor row_scale = upstream;
    if (reduction_ == Reduction::mean)
      row_scale = Tensor::full({1}, count_ > 0 ? upstream.item() / double(count_) : 0.0, logits_.dtype());
    ENGINE_DISPATCH_FLOAT(logits_.dtype(), "cross_entropy", [&] {
      ENGINE_DISPATCH_INDEX(targets_.dtype(), "cross_entropy", [&] {
        cpu::cross_entropy_backward<scalar_t, index_t>(grad_logits.data<scalar_t>(), logits_.data<scalar_t>(),
                                                       row_max_.data<scalar_t>(), row_sum_.data<scalar_t>(),
                                                       targets_.data<index_t>(),
                                                       row_scale.data<scalar_t>(), stride, N, V, ignore_index_,
                                                       label_smoothing_);
      });
    });
    return {grad_logits, Tensor()};
  }
  void release_saved() override {
    logits_ = Tensor();
    targets_ = Tensor();
    row_max_ = Tensor();
    row_sum_ = Tensor();
  }

 private:
  Tensor logits_;   // (..., V) contiguous, detached
  Tensor targets_;  // (...) contiguous
  Tensor row_max_;  // (N) each row's max m
  Tensor row_sum_;  // (N) Σ_j exp(x_j − m)
  int64_t ignore_index_;
  double label_smoothing_;
  Reduction reduction_;
  int64_t count_;  // non-ignored targets
};

// What the forward hands to the caller and the backward node.
struct ForwardResult {
  Tensor out;         // the reduced loss, or the per-row losses (...) for `none`
  Tensor row_max;     // (N)
  Tensor row_sum;     // (N)
  int64_t count = 0;  // non-ignored targets
};

// Throws when a target (not ignore_index) lies outside [0, V); `position` is -1 when all are valid.
void check_targets(int64_t position, int64_t value, int64_t V, const Tensor& logits, int64_t ignore_index) {
  ENGINE_CHECK(position < 0, "cross_entropy: target ", value, " at position ", position, " is out of range for V = ",
               V, " classes (logits ", logits.describe(), ", ignore_index ", ignore_index, ")");
}

// logits: (..., V) contiguous on the CPU, targets: (...) contiguous.
ForwardResult cross_entropy_cpu(const Tensor& logits, const Tensor& targets, int64_t N, int64_t V,
                                int64_t ignore_index, double label_smoothing, Reduction reduction) {
  int64_t count = 0;
  ENGINE_DISPATCH_INDEX(targets.dtype(), "cross_entropy", [&] {
    const index_t* t = targets.data<index_t>();
    const int64_t bad = cpu::first_invalid_target<index_t>(t, N, V, ignore_index);
    check_targets(bad, bad < 0 ? 0 : int64_t(t[bad]), V, logits, ignore_index);
    for (int64_t n = 0; n < N; ++n) count += int64_t(t[n]) != ignore_index;
  });

  Tensor losses = Tensor::empty(targets.shape(), logits.dtype(), logits.device());
  Tensor row_max = Tensor::empty({N}, logits.dtype(), logits.device());
  Tensor row_sum = Tensor::empty({N}, logits.dtype(), logits.device());
  ENGINE_DISPATCH_FLOAT(logits.dtype(), "cross_entropy", [&] {
    ENGINE_DISPATCH_INDEX(targets.dtype(), "cross_entropy", [&] {
      cpu::cross_entropy_forward<scalar_t, index_t>(losses.data<scalar_t>(), row_max.data<scalar_t>(),
                                                    row_sum.data<scalar_t>(), logits.data<scalar_t>(),
                                                    targets.data<index_t>(), N, V, ignore_index, label_smoothing);
    });
  });
  if (reduction == Reduction::none) return {losses, row_max, row_sum, count};
  // Summed in row order in double: the same total for any thread count.
  double total = 0.0;
  ENGINE_DISPATCH_FLOAT(logits.dtype(), "cross_entropy", [&] {
    const scalar_t* l = losses.data<scalar_t>();
    for (int64_t n = 0; n < N; ++n) total += double(l[n]);
  });
  if (reduction == Reduction::mean) total = count > 0 ? total / double(count) : 0.0;
  return {Tensor::full({}, total, logits.dtype(), logits.device()), row_max, row_sum, count};
}

// As cross_entropy_cpu, on CUDA. The reduction stays on the device; the host reads back only the
// target summary (count and first invalid target), which its checks and the backward need.
ForwardResult cross_entropy_cuda(const Tensor& logits, const Tensor& targets, int64_t N, int64_t V,
                                 int64_t ignore_index, double label_smoothing, Reduction reduction) {
  Tensor losses = Tensor::empty(targets.shape(), logits.dtype(), logits.device());
  Tensor row_max = Tensor::empty({N}, logits.dtype(), logits.device());
  Tensor row_sum = Tensor::empty({N}, logits.dtype(), logits.device());
  Tensor reduced = reduction == Reduction::none ? Tensor() : Tensor::empty({}, logits.dtype(), logits.device());
  const cuda::CrossEntropySummary summary = cuda::cross_entropy_forward(
      losses, row_max, row_sum, reduced, logits, targets, ignore_index, label_smoothing, reduction == Reduction::mean);
  check_targets(summary.bad_position, summary.bad_value, V, logits, ignore_index);
  return {reduced.defined() ? reduced : losses, row_max, row_sum, summary.count};
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index, double label_smoothing,
                     Reduction reduction) {
  ENGINE_CHECK(logits.defined() && targets.defined(), "cross_entropy: undefined logits or targets");
  ENGINE_CHECK(logits.dim() >= 1 && logits.size(-1) > 0, "cross_entropy: logits must be (..., V) with V > 0, got ",
               logits.describe());
  ENGINE_CHECK(engine::is_floating(logits.dtype()), "cross_entropy: logits must be f32 or f64, got ",
               logits.describe());
  ENGINE_CHECK(!engine::is_floating(targets.dtype()), "cross_entropy: targets must be i32 or i64, got ",
               targets.describe());
  ENGINE_CHECK(targets.shape() == engine::Shape(logits.shape().begin(), logits.shape().end() - 1),
               "cross_entropy: targets ", targets.describe(), " must have the logits' shape without the last dim; ",
               "logits are ", logits.describe());
  ENGINE_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, "cross_entropy: label_smoothing must be in [0, 1], got ",
               label_smoothing);
  engine::check_same_device("cross_entropy", {&logits, &targets});
  const int64_t V = logits.size(-1), N = targets.numel();
  const Tensor targets_c = targets.contiguous(), logits_c = logits.detach().contiguous();
  ForwardResult result;
  if (logits.device().is_cuda()) {
    result = cross_entropy_cuda(logits_c, targets_c, N, V, ignore_index, label_smoothing, reduction);
  } else {
    result = cross_entropy_cpu(logits_c, targets_c, N, V, ignore_index, label_smoothing, reduction);
  }
  Tensor out = result.out;

  if (engine::needs_grad({&logits}))
    engine::record(std::make_shared<CrossEntropyBackward>(logits_c, targets_c, result.row_max, result.row_sum,
                                                          ignore_index, label_smoothing, reduction, result.count),
                   {&logits, &targets}, {&out});
  return out;
}

}  // namespace ops
