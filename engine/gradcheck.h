// Finite-difference gradient check. For f64 inputs, compares the autograd gradient of
//   L = Σ seed ⊙ f(inputs)       (seed a fixed random tensor, so every output element matters)
// with central differences (L(x + ε) − L(x − ε)) / 2ε for every element of every input that
// requires grad. Inputs may be non-contiguous views; they are perturbed in place through their
// storage, so the check sees exactly the layout the op sees.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace engine {

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0.0;
  double max_rel_error = 0.0;
  std::string message;  // the first mismatch: input, element, analytic vs numeric
};

// `fn` maps the inputs to one output tensor. Tolerances suit f64 with ε = 1e-6: a correct
// gradient agrees to ~1e-8; a wrong one is off by O(1).
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, double eps = 1e-6, double atol = 1e-7,
                          double rtol = 1e-5, uint64_t seed = 1234);

}  // namespace engine
