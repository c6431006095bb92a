// The fused classifier ops::cross_entropy_consuming on the CPU: the same losses and gradients as
// ops::cross_entropy (bit for bit when the upstream gradient is 1), f64 gradcheck on both of its
// paths, its kernel on a NaN-poisoned gradient buffer against kernel 0, the gradient written over
// logits it owns (one (N, V) buffer less at the peak) and never over logits a caller keeps.
// Saturated rows and the CUDA comparisons run in the shared bodies (tests/common/cross_entropy_checks.h).
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "common/cross_entropy_checks.h"
#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/gradcheck.h"
#include "engine/rng.h"
#include "ops/cpu/cross_entropy.h"
#include "ops/cross_entropy.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/reference/cross_entropy.h"

using engine::Dtype;
using engine::Tensor;
using ops::Reduction;

namespace {

// Loss and logits' gradient of one variant on a fresh leaf holding `values`, seeded with `seed`.
struct LossAndGradient {
  std::vector<double> loss, grad;
};
LossAndGradient run(const cross_entropy_checks::Variant& variant, const Tensor& values, const Tensor& targets,
                    int64_t ignore_index, double smoothing, Reduction reduction, const Tensor& seed) {
  Tensor leaf = values.detach().clone();
  leaf.requires_grad_();
  Tensor loss = variant.loss(leaf, targets, ignore_index, smoothing, reduction);
  loss.backward(seed);
  return {loss.to_vector<double>(), leaf.grad().to_vector<double>()};
}

}  // namespace

TEST_CASE("cross_entropy_consuming equals cross_entropy: bit for bit with upstream 1, within an ulp otherwise") {
  engine::Generator gen(31);
  const int64_t ignore_index = -3;
  for (Dtype dtype : {Dtype::f32, Dtype::f64})
    for (Dtype index_dtype : {Dtype::i64, Dtype::i32})
      for (Reduction reduction : {Reduction::mean, Reduction::sum, Reduction::none})
        for (double smoothing : {0.0, 0.1}) {
          CAPTURE(std::string(engine::dtype_name(dtype)));
          CAPTURE(std::string(engine::dtype_name(index_dtype)));
          CAPTURE(int(reduction));
          CAPTURE(smoothing);
          // (3, 7, 129): rows above and below the vectorised exp's 16 lanes, a fifth of them ignored.
          const Tensor values = Tensor::randn({3, 7, 129}, gen, dtype) * 4.0;
          const Tensor targets = Tensor::from_indices(
              cross_entropy_checks::random_targets(21, 129, ignore_index, gen), {3, 7}, index_dtype);
          const engine::Shape loss_shape = reduction == Reduction::none ? engine::Shape{3, 7} : engine::Shape{};
          const Tensor ones = Tensor::ones(loss_shape, dtype);
          const LossAndGradient want =
              run(cross_entropy_checks::kPresent, values, targets, ignore_index, smoothing, reduction, ones);
          for (const auto& variant : {cross_entropy_checks::kFusedInPlace, cross_entropy_checks::kFusedKept}) {
            CAPTURE(std::string(variant.name));
            const LossAndGradient got = run(variant, values, targets, ignore_index, smoothing, reduction, ones);
            CHECK(got.loss == want.loss);
            CHECK(got.grad == want.grad);
            // Another upstream gradient: the fused gradient is the one for 1 rounded once more by the
            // product; the present op folds the upstream into its factors. Both lie within a couple of
            // ulp (f32 2^-24 ≈ 6e-8) of the exact value, relative to the row's largest entry.
            const Tensor seed = reduction == Reduction::none ? Tensor::randn(loss_shape, gen, dtype)
                                                             : Tensor::full({}, 0.37, dtype);
            const LossAndGradient scaled_want =
                run(cross_entropy_checks::kPresent, values, targets, ignore_index, smoothing, reduction, seed);
            const LossAndGradient scaled = run(variant, values, targets, ignore_index, smoothing, reduction, seed);
            const double tolerance = dtype == Dtype::f32 ? 4 * std::ldexp(1.0, -24) : 4 * std::ldexp(1.0, -53);
            const int64_t V = 129;
            for (size_t row = 0; row < scaled.grad.size() / size_t(V); ++row) {
              double max_err = 0.0, max_ref = 0.0;
              for (size_t j = row * V; j < (row + 1) * V; ++j) {
                max_err = std::max(max_err, std::abs(scaled.grad[j] - scaled_want.grad[j]));
                max_ref = std::max(max_ref, std::abs(scaled_want.grad[j]));
              }
              CHECK(max_err <= tolerance * max_ref);
            }
          }
        }
}

TEST_CASE("cross_entropy_consuming gradients (f64 gradcheck), in place and into a fresh buffer") {
  engine::Generator gen(17);
  for (const auto& variant : {cross_entropy_checks::kFusedInPlace, cross_entropy_checks::kFusedKept})
    for (Reduction reduction : {Reduction::mean, Reduction::sum, Reduction::none})
      for (double smoothing : {0.0, 0.15}) {
        CAPTURE(std::string(variant.name));
        CAPTURE(int(reduction));
        CAPTURE(smoothing);
        // logits (2, 3, 5) read through a permuted view; one target ignored.
        Tensor logits = Tensor::randn({5, 2, 3}, gen, Dtype::f64).permute({1, 2, 0}).detach();
        logits.requires_grad_();
        const Tensor targets = Tensor::from_indices({4, 0, -1, 2, 3, 1}, {2, 3});
        auto result = engine::gradcheck(
            [&](const std::vector<Tensor>& in) { return variant.loss(in[0], targets, -1, smoothing, reduction); },
            {logits});
        CHECK_MESSAGE(result.ok, result.message);
      }
  // Non-contiguous logits passed straight in: their contiguous copy is the op's own to overwrite.
  Tensor logits = Tensor::randn({6, 4}, gen, Dtype::f64).transpose(0, 1).detach();  // (4, 6)
  logits.requires_grad_();
  const Tensor targets = Tensor::from_indices({5, 0, 2, 3}, {4});
  auto result = engine::gradcheck(
      [&](const std::vector<Tensor>& in) { return ops::cross_entropy_consuming(in[0].transpose(0, 1).transpose(0, 1),
                                                                               targets, -100, 0.1); },
      {logits});
  CHECK_MESSAGE(result.ok, result.message);
}

TEST_CASE("cross_entropy_with_gradient kernel: every element of a NaN-poisoned buffer, against kernel 0") {
  engine::Generator gen(41);
  const int64_t N = 9, V = 70;
  for (double smoothing : {0.0, 0.2}) {
    CAPTURE(smoothing);
    const Tensor logits = Tensor::randn({N, V}, gen, Dtype::f64) * 3.0;
    const Tensor targets = Tensor::from_indices(cross_entropy_checks::random_targets(N, V, -100, gen), {N});
    std::vector<double> grad(size_t(N * V), std::numeric_limits<double>::quiet_NaN());
    std::vector<double> losses(size_t(N), std::numeric_limits<double>::quiet_NaN());
    const double scale = 0.25;
    ops::cpu::cross_entropy_with_gradient<double, int64_t>(losses.data(), grad.data(), logits.data<double>(),
                                                           targets.data<int64_t>(), N, V, -100, smoothing, scale);
    const std::vector<double> want_losses =
        ops::reference::cross_entropy(logits, targets, -100, smoothing).to_vector<double>();
    const std::vector<double> want_grad =
        ops::reference::cross_entropy_backward(logits, targets, -100, smoothing).to_vector<double>();
    for (size_t n = 0; n < losses.size(); ++n) CHECK(losses[n] == doctest::Approx(want_losses[n]).epsilon(1e-13));
    for (size_t i = 0; i < grad.size(); ++i) CHECK(std::abs(grad[i] - scale * want_grad[i]) <= 1e-15);
  }
}

TEST_CASE("cross_entropy_consuming writes over logits it owns, never over logits a caller keeps") {
  engine::Generator gen(8);
  const int64_t N = 64, V = 2048;  // 512 KiB of f32 per (N, V) buffer
  const int64_t C = 4;
  Tensor weight = Tensor::randn({V, C}, gen).requires_grad_();
  const Tensor features = Tensor::randn({N, C}, gen);
  const Tensor targets = Tensor::from_indices(cross_entropy_checks::random_targets(N, V, -100, gen), {N});
  // The logits come from a matmul whose backward saves its inputs, not the logits: a temporary is
  // the op's own.
  auto logits_of = [&] { return ops::matmul(features, weight, false, true); };  // (N, C) · (V, C)ᵀ = (N, V)
  CHECK(ops::logits_consumable(logits_of()));

  // Peak bytes above the start of one forward and backward of `loss_of` (the weight's gradient kept).
  engine::Allocator& allocator = engine::cpu_allocator();
  auto peak_of = [&](const std::function<Tensor()>& loss_of) {
    weight.set_grad(Tensor());
    allocator.reset_peak_stats();
    const size_t before = allocator.stats().bytes_in_use;
    loss_of().backward();
    return allocator.stats().peak_bytes_in_use - before;
  };
  const size_t present = peak_of([&] { return ops::cross_entropy(logits_of(), targets); });
  const Tensor present_grad = weight.grad().clone();
  const size_t fused = peak_of([&] { return ops::cross_entropy_consuming(logits_of(), targets); });
  CHECK(weight.grad().to_vector<float>() == present_grad.to_vector<float>());
  // cross_entropy peaks in its backward, holding the logits and their gradient; the fused op holds
  // one buffer throughout, and peaks in the matmul's backward, which adds the weight's gradient.
  const size_t buffer = engine::allocation_size_class(size_t(N * V) * sizeof(float));
  const size_t weight_gradient = engine::allocation_size_class(size_t(V * C) * sizeof(float));
  MESSAGE("peak above the start: cross_entropy " << present << " B, cross_entropy_consuming " << fused
                                                 << " B, one (N, V) buffer " << buffer << " B");
  CHECK(present >= 2 * buffer);
  CHECK(fused + buffer <= present + weight_gradient);

  // A caller that keeps the logits (another handle, or a view of them) reads them unchanged.
  Tensor kept = logits_of();
  const std::vector<float> before = kept.to_vector<float>();
  Tensor handle = kept;
  CHECK(!ops::logits_consumable(handle));
  ops::cross_entropy_consuming(std::move(handle), targets).backward();
  CHECK(!handle.defined());
  CHECK(kept.to_vector<float>() == before);
  Tensor logits = logits_of();
  const Tensor view = logits.reshape({N / 2, 2, V});  // shares the storage
  CHECK(!ops::logits_consumable(logits));
  ops::cross_entropy_consuming(std::move(logits), targets).backward();
  CHECK(view.reshape({N, V}).to_vector<float>() == before);
}

TEST_CASE("cross_entropy_consuming: without grad it is cross_entropy; errors name the target") {
  Tensor x = Tensor::from_vector({0.5, -1.0, 2.0, 0.25, 1.0, 0.0}, {2, 3});
  const Tensor targets = Tensor::from_indices({2, 0}, {2});
  CHECK(ops::cross_entropy_consuming(x.clone(), targets).item() == ops::cross_entropy(x, targets).item());
  x.requires_grad_();
  CHECK_THROWS_WITH_AS(ops::cross_entropy_consuming(x.clone(), Tensor::from_indices({1, 3}, {2})),
                       doctest::Contains("target 3 at position 1 is out of range for V = 3"), engine::Error);
}
