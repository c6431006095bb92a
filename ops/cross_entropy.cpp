// cross_entropy and the fused classifier cross_entropy_consuming: checks (targets against V),
// reduction, device dispatch and their backward nodes.
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

// The fused classifier's backward: the forward wrote the gradient for an upstream gradient of 1
// (the mean's 1/count included); this scales it in place by the upstream gradient, per row for
// `none`, and hands the buffer on. It runs once: the engine releases it afterwards.
class FusedCrossEntropyBackward final : public engine::Node {
 public:
  FusedCrossEntropyBackward(Tensor grad_logits, Tensor targets, int64_t ignore_index, Reduction reduction)
      : grad_logits_(std::move(grad_logits)), targets_(std::move(targets)), ignore_index_(ignore_index),
        reduction_(reduction) {}
  std::string name() const override { return "FusedCrossEntropyBackward"; }

  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    ENGINE_CHECK(grad_logits_.defined(), "cross_entropy_consuming: its backward ran twice; its gradient buffer is "
                 "used up by the first run (compute the loss again for a second backward)");
    const int64_t V = grad_logits_.size(-1), N = targets_.numel();
    const Tensor upstream = grads[0].contiguous();  // (...) for `none`, a scalar otherwise
    const int64_t stride = reduction_ == Reduction::none ? 1 : 0;
    if (grad_logits_.device().is_cuda()) {
      cuda::scale_gradient_rows(grad_logits_, targets_, upstream, stride, ignore_index_);
    } else {
      ENGINE_DISPATCH_FLOAT(grad_logits_.dtype(), "cross_entropy", [&] {
        ENGINE_DISPATCH_INDEX(targets_.dtype(), "cross_entropy", [&] {
          cpu::scale_gradient_rows<scalar_t, index_t>(grad_logits_.data<scalar_t>(), targets_.data<index_t>(),
                                                      upstream.data<scalar_t>(), stride, N, V, ignore_index_);
        });
      });
    }
    Tensor grad_logits = std::move(grad_logits_);  // leaves grad_logits_ undefined
    return {grad_logits, Tensor()};
  }
  void release_saved() override {
    grad_logits_ = Tensor();
    targets_ = Tensor();
  }

 private:
  Tensor grad_logits_;  // (..., V) contiguous, possibly the logits' own storage
  Tensor targets_;      // (...) contiguous
  int64_t ignore_index_;
  Reduction reduction_;
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

// The count of targets that are not ignore_index; throws at the first one outside [0, V).
int64_t count_targets_cpu(const Tensor& targets, int64_t N, int64_t V, const Tensor& logits, int64_t ignore_index) {
  int64_t count = 0;
  ENGINE_DISPATCH_INDEX(targets.dtype(), "cross_entropy", [&] {
    const index_t* t = targets.data<index_t>();
    const int64_t bad = cpu::first_invalid_target<index_t>(t, N, V, ignore_index);
    check_targets(bad, bad < 0 ? 0 : int64_t(t[bad]), V, logits, ignore_index);
    for (int64_t n = 0; n < N; ++n) count += int64_t(t[n]) != ignore_index;
  });
  return count;
}

// The per-row losses (...) reduced: themselves for `none`, else summed in row order in double (the
// same total for any thread count) and for `mean` divided by the count (0 when it is 0).
Tensor reduce_losses_cpu(const Tensor& losses, int64_t count, Reduction reduction) {
  if (reduction == Reduction::none) return losses;
  double total = 0.0;
  ENGINE_DISPATCH_FLOAT(losses.dtype(), "cross_entropy", [&] {
    const scalar_t* l = losses.data<scalar_t>();
    for (int64_t n = 0; n < losses.numel(); ++n) total += double(l[n]);
  });
  if (reduction == Reduction::mean) total = count > 0 ? total / double(count) : 0.0;
  return Tensor::full({}, total, losses.dtype(), losses.device());
}

// logits: (..., V) contiguous on the CPU, targets: (...) contiguous.
ForwardResult cross_entropy_cpu(const Tensor& logits, const Tensor& targets, int64_t N, int64_t V,
                                int64_t ignore_index, double label_smoothing, Reduction reduction) {
  const int64_t count = count_targets_cpu(targets, N, V, logits, ignore_index);

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
  return {reduce_losses_cpu(losses, count, reduction), row_max, row_sum, count};
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

// Throws unless logits (..., V) are floating, targets (...) integer on the same device, and the
// label smoothing in [0, 1].
void check_arguments(const Tensor& logits, const Tensor& targets, double label_smoothing) {
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
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index, double label_smoothing,
                     Reduction reduction) {
  check_arguments(logits, targets, label_smoothing);
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

bool logits_consumable(const Tensor& logits) {
  return logits.defined() && logits.impl_shared().use_count() == 1 && logits.storage().use_count() == 1 &&
         logits.is_contiguous();
}

Tensor cross_entropy_consuming(Tensor&& logits_in, const Tensor& targets, int64_t ignore_index,
                               double label_smoothing, Reduction reduction) {
  Tensor logits = std::move(logits_in);  // the caller's handle is empty from here on
  check_arguments(logits, targets, label_smoothing);
  if (!engine::needs_grad({&logits})) return cross_entropy(logits, targets, ignore_index, label_smoothing, reduction);
  // Decided before any other handle to the storage exists. Non-contiguous logits are copied, and the
  // copy is this op's own.
  const bool in_place = logits_consumable(logits) || !logits.is_contiguous();
  const Tensor input = logits.detach().contiguous();  // (N, V) as rows
  const Tensor grad_logits = in_place ? input : Tensor::empty(input.shape(), input.dtype(), input.device());
  const Tensor targets_c = targets.contiguous();
  const int64_t V = logits.size(-1), N = targets.numel();
  const Tensor losses = Tensor::empty(targets.shape(), logits.dtype(), logits.device());
  Tensor out;
  if (logits.device().is_cuda()) {
    const Tensor reduced =
        reduction == Reduction::none ? Tensor() : Tensor::empty({}, logits.dtype(), logits.device());
    const cuda::CrossEntropySummary summary = cuda::cross_entropy_with_gradient(
        losses, grad_logits, reduced, input, targets_c, ignore_index, label_smoothing, reduction == Reduction::mean);
    check_targets(summary.bad_position, summary.bad_value, V, logits, ignore_index);
    out = reduced.defined() ? reduced : losses;
  } else {
    const int64_t count = count_targets_cpu(targets_c, N, V, logits, ignore_index);
    const double grad_scale = reduction == Reduction::mean && count > 0 ? 1.0 / double(count) : 1.0;
    ENGINE_DISPATCH_FLOAT(logits.dtype(), "cross_entropy", [&] {
      ENGINE_DISPATCH_INDEX(targets_c.dtype(), "cross_entropy", [&] {
        cpu::cross_entropy_with_gradient<scalar_t, index_t>(losses.data<scalar_t>(), grad_logits.data<scalar_t>(),
                                                            input.data<scalar_t>(), targets_c.data<index_t>(), N, V,
                                                            ignore_index, label_smoothing, grad_scale);
      });
    });
    out = reduce_losses_cpu(losses, count, reduction);
  }
  engine::record(std::make_shared<FusedCrossEntropyBackward>(grad_logits, targets_c, ignore_index, reduction),
                 {&logits, &targets}, {&out});
  return out;
}

}  // namespace ops
