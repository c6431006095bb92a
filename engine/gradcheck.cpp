// Finite-difference gradient checks in f64 (engine/gradcheck.h).
#include "engine/gradcheck.h"

#include <cmath>
#include <sstream>

#include "engine/autograd.h"
#include "engine/rng.h"

namespace engine {

namespace {

// Σ seed ⊙ out, on the host in double.
double weighted_sum(const Tensor& out, const std::vector<double>& seed) {
  std::vector<double> values = out.to_vector<double>();
  double total = 0.0;
  for (size_t i = 0; i < values.size(); ++i) total += values[i] * seed[i];
  return total;
}

// Pointer to logical element `linear` of a CPU f64 tensor, following its strides.
double* element_ptr(const Tensor& t, int64_t linear) {
  int64_t offset = 0;
  for (size_t d = t.shape().size(); d-- > 0;) {
    offset += (linear % t.shape()[d]) * t.strides()[d];
    linear /= t.shape()[d];
  }
  return static_cast<double*>(t.raw_data()) + offset;
}

}  // namespace

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, double eps, double atol, double rtol, uint64_t seed) {
  GradcheckResult result;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad())
      ENGINE_CHECK(t.dtype() == Dtype::f64 && t.device().is_cpu(), "gradcheck: inputs that require grad must be f64 on "
                   "the CPU, got ", t.describe());

  // Analytic gradients.
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) t.impl_ptr()->grad.reset();
  Tensor out = fn(inputs);
  Generator gen(seed);
  Tensor seed_tensor = Tensor::randn(out.shape(), gen, out.dtype(), out.device());
  const std::vector<double> seed_values = seed_tensor.to_vector<double>();
  out.backward(seed_tensor);

  NoGradGuard no_grad;
  for (size_t input_index = 0; input_index < inputs.size(); ++input_index) {
    const Tensor& input = inputs[input_index];
    if (!input.defined() || !input.requires_grad()) continue;
    // A leaf view (e.g. a transposed parameter) reports its gradient in its own logical layout.
    const Tensor grad = input.grad();
    const std::vector<double> analytic =
        grad.defined() ? grad.to_vector<double>() : std::vector<double>(size_t(input.numel()), 0.0);
    for (int64_t i = 0; i < input.numel(); ++i) {
      double* element = element_ptr(input, i);
      const double original = *element;
      *element = original + eps;
      const double plus = weighted_sum(fn(inputs), seed_values);
      *element = original - eps;
      const double minus = weighted_sum(fn(inputs), seed_values);
      *element = original;
      const double numeric = (plus - minus) / (2 * eps);
      const double abs_error = std::abs(numeric - analytic[size_t(i)]);
      const double rel_error = abs_error / std::max(std::abs(numeric), 1e-12);
      result.max_abs_error = std::max(result.max_abs_error, abs_error);
      if (abs_error > atol) result.max_rel_error = std::max(result.max_rel_error, rel_error);
      if (result.ok && abs_error > atol + rtol * std::abs(numeric)) {
        std::ostringstream message;
        message << "input " << input_index << " (" << input.describe() << ") element " << i << ": analytic "
                << analytic[size_t(i)] << " vs numeric " << numeric;
        result.ok = false;
        result.message = message.str();
      }
    }
  }
  return result;
}

}  // namespace engine
