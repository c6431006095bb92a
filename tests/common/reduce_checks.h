// One check body for the CUDA reductions (ops/reduce.h), run by tests/ops_emu and tests/ops_gpu:
// sum, mean and max on CUDA against the CPU ops, forward and backward, over last, middle,
// scattered and all dimensions, with non-contiguous inputs and sizes that are not multiples of the
// kernels' block sizes (both the one-thread-per-output and the block-per-output kernels).
// Tolerances: op_compare::tolerance; argmax indices must match exactly.
#pragma once

#include <cmath>
#include <limits>
#include <vector>

#include "common/op_compare.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"

namespace reduce_checks {

using engine::Dtype;
using engine::Tensor;

inline void check_sum_and_mean(engine::Generator& gen, Dtype dtype) {
  const double tol = op_compare::tolerance(dtype);
  struct Case {
    engine::Shape shape;
    std::vector<int64_t> dims;
    bool keepdim;
  };
  const std::vector<Case> cases = {
      {{7, 5}, {1}, false},          // short rows: one thread per output
      {{3, 333}, {-1}, true},        // long rows: one block per row
      {{4, 70, 37}, {1}, false},     // a middle dimension: column tiles
      {{300, 45}, {0}, false},       // leading dimension (a bias gradient): O = 1
      {{3, 4, 5, 6}, {0, 2}, true},  // scattered dimensions
      {{6, 7, 8}, {}, false},        // everything
      {{5, 1, 3}, {1}, false},       // only a size-1 dimension
  };
  for (const Case& c : cases) {
    CAPTURE(engine::shape_str(c.shape));
    for (bool mean : {false, true}) {
      auto op = [&](const std::vector<Tensor>& t) {
        return mean ? ops::mean(t[0], c.dims, c.keepdim) : ops::sum(t[0], c.dims, c.keepdim);
      };
      op_compare::check_forward_backward(op, {{Tensor::randn(c.shape, gen, dtype), true}}, gen, tol);
    }
  }
  // A transposed input: its reduced dims are copied into place first.
  op_compare::check_forward_backward(
      [](const std::vector<Tensor>& t) { return ops::sum(t[0].transpose(0, 2), {0, 1}); },
      {{Tensor::randn({9, 4, 40}, gen, dtype), true}}, gen, tol);
}

// Rows with repeated values (ties) and one NaN: the argmax is the first maximum, NaN counting as one.
inline Tensor tied_values(const engine::Shape& shape, engine::Generator& gen, Dtype dtype, bool with_nan) {
  std::vector<double> values(size_t(engine::shape_numel(shape)));
  for (double& v : values) v = std::round(4.0 * gen.uniform()) - 1.5;
  if (with_nan) values[values.size() / 3] = std::numeric_limits<double>::quiet_NaN();
  return Tensor::from_vector(values, shape, dtype);
}

inline void check_max(engine::Generator& gen, Dtype dtype) {
  const double tol = op_compare::tolerance(dtype);
  struct Case {
    engine::Shape shape;
    int64_t dim;
    bool keepdim;
  };
  for (const Case& c : {Case{{6, 11}, 1, false}, Case{{3, 300}, -1, true}, Case{{4, 33, 7}, 1, false},
                        Case{{50, 3}, 0, true}}) {
    CAPTURE(engine::shape_str(c.shape));
    op_compare::check_forward_backward(
        [&](const std::vector<Tensor>& t) { return ops::max(t[0], c.dim, c.keepdim); },
        {{Tensor::randn(c.shape, gen, dtype), true}}, gen, tol);
    // Ties and NaN: values and indices exactly as on the CPU.
    for (bool with_nan : {false, true}) {
      const Tensor x = tied_values(c.shape, gen, dtype, with_nan);
      Tensor indices_cpu, indices_cuda;
      const Tensor values_cpu = ops::max(x, c.dim, c.keepdim, &indices_cpu);
      const Tensor values_cuda = ops::max(x.to(op_compare::kCuda), c.dim, c.keepdim, &indices_cuda);
      CHECK(indices_cuda.to_vector<int64_t>() == indices_cpu.to_vector<int64_t>());
      CHECK(op_compare::relative_error(values_cuda, values_cpu) == 0.0);
    }
  }
  // A non-contiguous input.
  op_compare::check_forward_backward([](const std::vector<Tensor>& t) { return ops::max(t[0].transpose(0, 1), 1); },
                                     {{Tensor::randn({40, 6}, gen, dtype), true}}, gen, tol);
}

inline void check_all(Dtype dtype) {
  engine::Generator gen(dtype == Dtype::f32 ? 201 : 202);
  check_sum_and_mean(gen, dtype);
  check_max(gen, dtype);
}

}  // namespace reduce_checks
