// Helpers shared by the op test suites: fresh gradient leaves, a gradcheck assertion that prints
// the first mismatch, and element-wise closeness of host vectors.
#pragma once

#include <doctest/doctest.h>

#include <functional>
#include <vector>

#include "engine/gradcheck.h"
#include "engine/tensor.h"

namespace op_testing {

// A leaf copy of t's data (same layout, views stay views) that requires grad.
inline engine::Tensor leaf(const engine::Tensor& t) {
  engine::Tensor out = t.detach();
  out.requires_grad_();
  return out;
}

inline void check_gradients(const std::function<engine::Tensor(const std::vector<engine::Tensor>&)>& fn,
                            const std::vector<engine::Tensor>& inputs) {
  const engine::GradcheckResult result = engine::gradcheck(fn, inputs);
  INFO(result.message);
  CHECK(result.ok);
}

inline void check_close(const std::vector<double>& actual, const std::vector<double>& expected,
                        double tolerance = 1e-12) {
  REQUIRE(actual.size() == expected.size());
  for (size_t i = 0; i < actual.size(); ++i) CHECK(actual[i] == doctest::Approx(expected[i]).epsilon(tolerance));
}

}  // namespace op_testing
