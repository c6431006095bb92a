// One test body for ops::dropout on CUDA, run by test_ops_emu (emulator) and test_ops_gpu (a real
// GPU). The mask comes from the same Philox counters on both devices and the kept elements are
// scaled by the same rounded 1/(1 − p), so the CUDA output and gradient equal the CPU's bitwise;
// the mask is also the bernoulli(1 − p) draw fill_random_ makes at the same (seed, offset).
#pragma once

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "common/backend_checks.h"
#include "engine/autograd.h"
#include "engine/rng.h"
#include "ops/dropout.h"

namespace dropout_checks {

using backend_checks::kCuda;
using backend_checks::relative_error;
using engine::Dtype;
using engine::Tensor;

// x: (A, B, C) seen through a transpose of a (C, B, A) leaf; A·B·C is odd, so the last Philox block
// is partly used. Both generators start at the same (seed, offset).
inline void check_case(int64_t A, int64_t B, int64_t C, double p, Dtype dtype) {
  CAPTURE(std::string(engine::dtype_name(dtype)));
  CAPTURE(p);
  engine::Generator data_gen(31);
  Tensor x_cpu = Tensor::randn({C, B, A}, data_gen, dtype);
  Tensor x_cuda = x_cpu.to(kCuda);
  for (Tensor* leaf : {&x_cpu, &x_cuda}) leaf->requires_grad_();
  engine::Generator gen_cpu(99), gen_cuda(99);
  gen_cpu.reserve(5);
  gen_cuda.reserve(5);
  const uint64_t offset = gen_cpu.offset();

  Tensor out_cpu = ops::dropout(x_cpu.permute({2, 1, 0}), p, gen_cpu, true);
  Tensor out_cuda = ops::dropout(x_cuda.permute({2, 1, 0}), p, gen_cuda, true);
  CHECK(gen_cuda.offset() == gen_cpu.offset());
  CHECK(out_cuda.device() == kCuda);
  CHECK(relative_error(out_cuda, out_cpu) == 0.0);

  // Kept elements are exactly where a bernoulli(1 − p) draw at the same counters gives 1.
  Tensor keep = Tensor::empty({A, B, C}, Dtype::f64, kCuda);
  engine::Generator mask_gen(99);
  mask_gen.reserve(5);
  REQUIRE(mask_gen.offset() == offset);
  engine::fill_random_(keep, mask_gen, {engine::RandomDistribution::bernoulli, 1.0 - p});
  const std::vector<double> kept = keep.to_vector<double>(), values = out_cuda.to_vector<double>();
  int64_t mismatches = 0, zeros = 0;
  for (size_t i = 0; i < kept.size(); ++i) {
    mismatches += (values[i] != 0.0) != (kept[i] == 1.0);
    zeros += values[i] == 0.0;
  }
  CHECK(mismatches == 0);
  if (p > 0.0 && p < 1.0) CHECK((zeros > 0 && zeros < int64_t(kept.size())));

  Tensor seed = Tensor::randn({A, B, C}, data_gen, dtype);
  out_cpu.backward(seed);
  out_cuda.backward(seed.to(kCuda));
  REQUIRE(x_cuda.grad().defined());
  CHECK(relative_error(x_cuda.grad(), x_cpu.grad()) == 0.0);
}

inline void check_forward_and_backward() {
  for (Dtype dtype : {Dtype::f32, Dtype::f64}) {
    check_case(7, 13, 11, 0.3, dtype);
    check_case(3, 1, 7, 0.6, dtype);
    check_case(5, 3, 3, 1.0, dtype);  // everything dropped
  }
  // Evaluation, or p = 0: the input itself.
  engine::Generator gen(1);
  Tensor x = Tensor::randn({4, 5}, gen, Dtype::f32, kCuda);
  CHECK(ops::dropout(x, 0.5, gen, false).same(x));
  CHECK(ops::dropout(x, 0.0, gen, true).same(x));
}

}  // namespace dropout_checks
