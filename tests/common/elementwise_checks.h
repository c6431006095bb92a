// One check body for the CUDA elementwise ops (ops/elementwise.h), run by tests/ops_emu (kernel
// emulator) and tests/ops_gpu (real GPU): each op on CUDA against the CPU op, forward and the
// gradient of every input, with broadcast, transposed and narrowed operands of odd sizes, and
// contiguous operands (the 128-bit packed kernels) whole, of lengths that leave a short last pack,
// and narrowed to start off the 16-byte grid (the packed kernels' scalar tail).
// Tolerances: op_compare::tolerance.
#pragma once

#include <cmath>
#include <vector>

#include "common/op_compare.h"
#include "ops/elementwise.h"

namespace elementwise_checks {

using engine::Dtype;
using engine::Tensor;
using op_compare::Input;

// A random tensor with entries in [0.5, 2.5): safe for log, sqrt, division and real powers.
inline Tensor positive(const engine::Shape& shape, engine::Generator& gen, Dtype dtype) {
  engine::NoGradGuard no_grad;
  return Tensor::rand(shape, gen, dtype) * 2.0 + 0.5;
}

// A condition of `dtype` with random true and false (nonzero / zero) entries, some true values not 1.
inline Tensor random_condition(const engine::Shape& shape, engine::Generator& gen, Dtype dtype) {
  std::vector<double> values(size_t(engine::shape_numel(shape)));
  for (double& v : values) v = gen.uniform() < 0.5 ? 0.0 : (gen.uniform() < 0.5 ? 1.0 : -3.0);
  return Tensor::from_vector(values, shape, dtype);
}

inline void check_binary(engine::Generator& gen, Dtype dtype) {
  using BinaryFn = Tensor (*)(const Tensor&, const Tensor&);
  const double tol = op_compare::tolerance(dtype);
  for (BinaryFn fn : {BinaryFn(ops::add), BinaryFn(ops::sub), BinaryFn(ops::mul), BinaryFn(ops::div)}) {
    // (7, 5, 3) from a transposed (3, 5, 7) with a narrowed (5, 1) broadcast along dims 0 and 2.
    op_compare::check_forward_backward(
        [fn](const std::vector<Tensor>& t) { return fn(t[0].transpose(0, 2), t[1].narrow(1, 2, 1)); },
        {{Tensor::randn({3, 5, 7}, gen, dtype), true}, {positive({5, 4}, gen, dtype), true}}, gen, tol);
    // Both operands broadcast, rank 6, the first one also narrowed in its last dimension.
    op_compare::check_forward_backward(
        [fn](const std::vector<Tensor>& t) { return fn(t[0].narrow(5, 1, 5), t[1]); },
        {{Tensor::randn({2, 1, 3, 1, 2, 7}, gen, dtype), true}, {positive({3, 4, 1, 5}, gen, dtype), true}}, gen, tol);
    // Contiguous, same shape: the rank-1 fast path; only the second operand needs a gradient.
    op_compare::check_forward_backward([fn](const std::vector<Tensor>& t) { return fn(t[0], t[1]); },
                                       {{Tensor::randn({300}, gen, dtype), false}, {positive({300}, gen, dtype), true}},
                                       gen, tol);
    // Contiguous views starting 1 and 3 elements in: every pack off the 16-byte grid.
    op_compare::check_forward_backward(
        [fn](const std::vector<Tensor>& t) { return fn(t[0].narrow(0, 1, 298), t[1].narrow(0, 3, 298)); },
        {{Tensor::randn({300}, gen, dtype), true}, {positive({301}, gen, dtype), true}}, gen, tol);
  }
}

inline void check_unary(engine::Generator& gen, Dtype dtype) {
  using UnaryFn = std::function<Tensor(const Tensor&)>;
  const double tol = op_compare::tolerance(dtype);
  const std::vector<UnaryFn> fns = {
      [](const Tensor& x) { return ops::add_scalar(x, 1.25); },
      [](const Tensor& x) { return ops::mul_scalar(x, -0.75); },
      [](const Tensor& x) { return ops::pow_scalar(x, 2.0); },
      [](const Tensor& x) { return ops::pow_scalar(x, 1.7); },
      [](const Tensor& x) { return ops::neg(x); },
      [](const Tensor& x) { return ops::exp(x); },
      [](const Tensor& x) { return ops::log(x); },
      [](const Tensor& x) { return ops::tanh(x); },
      [](const Tensor& x) { return ops::sqrt(x); },
      [](const Tensor& x) { return ops::rsqrt(x); },
      [](const Tensor& x) { return ops::gelu(x); },  // index 10
      [](const Tensor& x) { return ops::relu(x); }};  // index 11
  for (size_t k = 0; k < fns.size(); ++k) {
    CAPTURE(k);
    const UnaryFn& fn = fns[k];
    // Positive inputs (log, sqrt, pow); gelu and relu also see negatives through x - 1.5.
    const bool signed_input = k == 10 || k == 11;
    op_compare::check_forward_backward(
        [&](const std::vector<Tensor>& t) {
          const Tensor x = t[0].transpose(0, 1).narrow(0, 1, 8);
          return fn(signed_input ? x - 1.5 : x);
        },
        {{positive({6, 9}, gen, dtype), true}}, gen, tol);
    op_compare::check_forward_backward([&](const std::vector<Tensor>& t) { return fn(t[0]); },
                                       {{positive({257}, gen, dtype), true}}, gen, tol);
    op_compare::check_forward_backward([&](const std::vector<Tensor>& t) { return fn(t[0].narrow(0, 1, 255)); },
                                       {{positive({257}, gen, dtype), true}}, gen, tol);
  }
}

inline void check_where_and_masked_fill(engine::Generator& gen, Dtype dtype) {
  const double tol = op_compare::tolerance(dtype);
  for (Dtype condition_dtype : {Dtype::f32, Dtype::f64, Dtype::i32, Dtype::i64}) {
    CAPTURE(engine::dtype_name(condition_dtype));
    // condition (5, 1), a transposed (5, 6), b (6) broadcast along rows.
    op_compare::check_forward_backward(
        [](const std::vector<Tensor>& t) { return ops::where(t[0], t[1].transpose(0, 1), t[2]); },
        {{random_condition({5, 1}, gen, condition_dtype), false},
         {Tensor::randn({6, 5}, gen, dtype), true},
         {Tensor::randn({6}, gen, dtype), true}},
        gen, tol);
    // mask (3, 1, 7) over a narrowed x (3, 4, 7).
    op_compare::check_forward_backward(
        [](const std::vector<Tensor>& t) { return ops::masked_fill(t[1].narrow(1, 1, 4), t[0], -2.5); },
        {{random_condition({3, 1, 7}, gen, condition_dtype), false}, {Tensor::randn({3, 6, 7}, gen, dtype), true}},
        gen, tol);
  }
}

inline void check_all(Dtype dtype) {
  engine::Generator gen(dtype == Dtype::f32 ? 101 : 102);
  check_binary(gen, dtype);
  check_unary(gen, dtype);
  check_where_and_masked_fill(gen, dtype);
}

}  // namespace elementwise_checks
