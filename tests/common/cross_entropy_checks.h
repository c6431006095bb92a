// One test body for ops::cross_entropy and the fused classifier ops::cross_entropy_consuming on CUDA,
// run by test_ops_emu (emulator) and test_ops_gpu (a real GPU): forward losses and logits' gradients
// compared with the CPU op on fresh random inputs, for every reduction, with ignored targets, label
// smoothing, both index dtypes, non-contiguous logits and targets, V below and above the block size,
// and the invalid-target error. Each body takes the loss as a Variant: the present op, or the fused
// one writing its gradient over a copy of the logits that it owns, or into a fresh buffer (which
// the emulator's allocator hands out poisoned, NaN) because the caller still holds the logits.
//
// Tolerance: f32 relative error < 1e-5 (row sums in double, one f32 exp per element whose device
// ulp may differ from the host's); f64 < 1e-12 (the same double sums in a different tree order).
// check_saturated_rows (any device, the CPU's included) compares f32 gradients on logits near 100
// with kernel 0 in f64 instead; its tolerance is explained there.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "common/backend_checks.h"
#include "engine/autograd.h"
#include "engine/rng.h"
#include "ops/cross_entropy.h"
#include "ops/reference/cross_entropy.h"

namespace cross_entropy_checks {

using backend_checks::kCuda;
using backend_checks::relative_error;
using engine::Dtype;
using engine::Tensor;
using ops::Reduction;

inline double tolerance(Dtype dtype) { return dtype == Dtype::f32 ? 1e-5 : 1e-12; }

// A cross-entropy op as the bodies call it: logits, targets, ignore_index, label smoothing, reduction.
using LossFunction = std::function<Tensor(const Tensor&, const Tensor&, int64_t, double, Reduction)>;
struct Variant {
  const char* name;
  LossFunction loss;
};

// ops::cross_entropy, which keeps the logits.
inline const Variant kPresent{"cross_entropy", [](const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                                                  double smoothing, Reduction reduction) {
                                return ops::cross_entropy(logits, targets, ignore_index, smoothing, reduction);
                              }};
// The fused classifier on a copy of the logits that nothing else holds: the gradient overwrites it.
inline const Variant kFusedInPlace{
    "cross_entropy_consuming (in place)",
    [](const Tensor& logits, const Tensor& targets, int64_t ignore_index, double smoothing, Reduction reduction) {
      Tensor copy = logits.clone();
      REQUIRE(ops::logits_consumable(copy));
      return ops::cross_entropy_consuming(std::move(copy), targets, ignore_index, smoothing, reduction);
    }};
// The fused classifier on contiguous logits that the caller keeps: the gradient goes to a fresh
// buffer and the kept logits are unchanged.
inline const Variant kFusedKept{
    "cross_entropy_consuming (logits kept)",
    [](const Tensor& logits, const Tensor& targets, int64_t ignore_index, double smoothing, Reduction reduction) {
      const Tensor kept = logits.contiguous();
      Tensor handle = kept;
      REQUIRE(!ops::logits_consumable(handle));
      return ops::cross_entropy_consuming(std::move(handle), targets, ignore_index, smoothing, reduction);
    }};
inline const Variant kVariants[] = {kPresent, kFusedInPlace, kFusedKept};

// Random targets in [0, V) with about a fifth set to ignore_index.
inline std::vector<int64_t> random_targets(int64_t N, int64_t V, int64_t ignore_index, engine::Generator& gen) {
  std::vector<int64_t> targets(size_t(N), 0);
  for (int64_t& t : targets)
    t = gen.uniform() < 0.2 ? ignore_index : std::min<int64_t>(V - 1, int64_t(gen.uniform() * double(V)));
  return targets;
}

// logits (B, T, V) seen through a permutation of a (V, T, B) leaf; targets (B, T) narrowed from a wider
// tensor. The loss's gradient is seeded with a random value (or random per-row values for `none`).
inline void check_case(const Variant& variant, int64_t B, int64_t T, int64_t V, Dtype dtype, Dtype index_dtype,
                       Reduction reduction, double label_smoothing, engine::Generator& gen) {
  CAPTURE(std::string(variant.name));
  CAPTURE(B);
  CAPTURE(T);
  CAPTURE(V);
  CAPTURE(std::string(engine::dtype_name(dtype)));
  CAPTURE(std::string(engine::dtype_name(index_dtype)));
  CAPTURE(int(reduction));
  CAPTURE(label_smoothing);
  const int64_t ignore_index = -7;
  Tensor base_cpu = Tensor::randn({V, T, B}, gen, dtype);
  base_cpu.requires_grad_();
  Tensor base_cuda = base_cpu.detach().to(kCuda);
  base_cuda.requires_grad_();
  const std::vector<int64_t> wide = random_targets(B * (T + 2), V, ignore_index, gen);
  const Tensor targets_cpu = Tensor::from_indices(wide, {B, T + 2}, index_dtype).narrow(1, 1, T);
  const Tensor targets_cuda = Tensor::from_indices(wide, {B, T + 2}, index_dtype, kCuda).narrow(1, 1, T);

  Tensor loss_cpu = variant.loss(base_cpu.permute({2, 1, 0}), targets_cpu, ignore_index, label_smoothing, reduction);
  Tensor loss_cuda =
      variant.loss(base_cuda.permute({2, 1, 0}), targets_cuda, ignore_index, label_smoothing, reduction);
  CHECK(loss_cuda.device() == kCuda);
  CHECK(relative_error(loss_cuda, loss_cpu) < tolerance(dtype));

  Tensor seed_cpu = reduction == Reduction::none ? Tensor::randn(loss_cpu.shape(), gen, dtype)
                                                 : Tensor::full({}, 0.75, dtype);
  loss_cpu.backward(seed_cpu);
  loss_cuda.backward(seed_cpu.to(kCuda));
  REQUIRE(base_cuda.grad().defined());
  CHECK(base_cuda.grad().device() == kCuda);
  CHECK(relative_error(base_cuda.grad(), base_cpu.grad()) < tolerance(dtype));
}

inline void check_forward_and_backward(const Variant& variant) {
  engine::Generator gen(2024);
  for (Dtype dtype : {Dtype::f32, Dtype::f64})
    for (Reduction reduction : {Reduction::mean, Reduction::sum, Reduction::none}) {
      check_case(variant, 3, 5, 37, dtype, Dtype::i64, reduction, 0.0, gen);
      check_case(variant, 2, 3, 301, dtype, Dtype::i32, reduction, 0.1, gen);
    }
  // One row, one class: the loss is 0 and so is the gradient, without NaN from log(1).
  check_case(variant, 1, 1, 1, Dtype::f64, Dtype::i64, Reduction::sum, 0.0, gen);
}

// Every target ignored: the mean is 0 (as documented) and so is the gradient.
inline void check_all_ignored(const Variant& variant) {
  CAPTURE(std::string(variant.name));
  engine::Generator gen(5);
  Tensor logits = Tensor::randn({4, 9}, gen, Dtype::f64, kCuda);
  logits.requires_grad_();
  Tensor loss = variant.loss(logits, Tensor::from_indices({-100, -100, -100, -100}, {4}, Dtype::i64, kCuda), -100,
                             0.0, Reduction::mean);
  CHECK(loss.item() == 0.0);
  loss.backward();
  const std::vector<double> grad = logits.grad().to_vector<double>();
  for (double g : grad) CHECK(g == 0.0);
}

inline void check_invalid_target(const Variant& variant) {
  CAPTURE(std::string(variant.name));
  engine::Generator gen(6);
  Tensor logits = Tensor::randn({3, 5}, gen, Dtype::f32, kCuda);
  logits.requires_grad_();
  CHECK_THROWS_WITH_AS(
      variant.loss(logits, Tensor::from_indices({1, 5, -1}, {3}, Dtype::i32, kCuda), -100, 0.0, Reduction::mean),
      doctest::Contains("cross_entropy: target 5 at position 1 is out of range for V = 5"), engine::Error);
  CHECK_THROWS_WITH_AS(
      variant.loss(logits, Tensor::from_indices({1, 2, -1}, {3}, Dtype::i64, kCuda), -100, 0.0, Reduction::mean),
      doctest::Contains("cross_entropy: target -1 at position 2 is out of range"), engine::Error);
}

// Saturated f32 rows, as SeqPE's contrastive loss meets them: logits near 100, so lse ≈ 100 to 110,
// where one f32 ulp is 7.6e-6. The gradient of the summed loss, softmax − onehot, is compared row by
// row with kernel 0 (ops/reference/cross_entropy.h) computed in f64 from the same f32 logits:
// max_j |g_j − ref_j| / max_j |ref_j|.
// The softmax formed from the row's max and sum has x_j − max exact (both within a factor 2), then an
// f32 exp (≤ 2 ulp), one rounded factor 1/Σ and one product (1 ulp each), and the target's
// subtraction (1 ulp): about 5 units of 2^-24 = 6e-8. The tolerance allows 8 units, 4.8e-7. An
// exp(x − lse) with lse rounded to f32 has lse's rounding, up to 3.8e-6, in every probability.
inline void check_saturated_rows(const Variant& variant, engine::Device device) {
  CAPTURE(std::string(variant.name));
  const int64_t N = 24, V = 300;
  engine::Generator gen(77);
  std::vector<double> logits(size_t(N * V));
  std::vector<int64_t> targets(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) {
    // A third of the rows flat (spread 0.5), a third spread 3, a third with the target 6 ahead.
    const double spread = n % 3 == 0 ? 0.5 : 3.0;
    const Tensor noise = Tensor::randn({V}, gen, Dtype::f64);
    const std::vector<double> z = noise.to_vector<double>();
    targets[size_t(n)] = std::min<int64_t>(V - 1, int64_t(gen.uniform() * double(V)));
    for (int64_t j = 0; j < V; ++j) {
      double x = 100.0 + spread * z[size_t(j)];
      if (n % 3 == 2 && j == targets[size_t(n)]) x += 6.0;
      logits[size_t(n * V + j)] = double(float(x));  // what the f32 op sees
    }
  }
  Tensor x = Tensor::from_vector(logits, {N, V}, Dtype::f32, device);
  x.requires_grad_();
  variant.loss(x, Tensor::from_indices(targets, {N}, Dtype::i64, device), -100, 0.0, Reduction::sum).backward();
  const std::vector<double> grad = x.grad().to(engine::Device::cpu()).to_vector<double>();
  // Kernel 0 (ops/reference/cross_entropy.h) on the same f32 logits, in double.
  const std::vector<double> want =
      ops::reference::cross_entropy_backward(Tensor::from_vector(logits, {N, V}, Dtype::f64),
                                             Tensor::from_indices(targets, {N}, Dtype::i64))
          .to_vector<double>();
  double worst = 0.0;
  for (int64_t n = 0; n < N; ++n) {
    double max_err = 0.0, max_ref = 0.0;
    for (int64_t j = 0; j < V; ++j) {
      const size_t at = size_t(n * V + j);
      max_err = std::max(max_err, std::abs(grad[at] - want[at]));
      max_ref = std::max(max_ref, std::abs(want[at]));
    }
    worst = std::max(worst, max_err / max_ref);
  }
  MESSAGE(std::string(variant.name) << ", saturated rows on " << device.str() << ": worst row's relative gradient error " << worst);
  CHECK(worst < 8 * std::ldexp(1.0, -24));
}

}  // namespace cross_entropy_checks
