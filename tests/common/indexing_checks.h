// One test body for concat, split, stack, index_select and gather on CUDA, run by test_ops_emu
// (emulator) and test_ops_gpu (a real GPU): outputs and gradients compared with the CPU ops on fresh
// random inputs, with non-contiguous inputs, repeated indices, several dims and both index dtypes.
//
// Tolerance: exact. The forwards copy, and the backwards add each gradient element's contributions
// in index order on both devices (no atomics), so even f32 sums round identically.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/backend_checks.h"
#include "engine/autograd.h"
#include "engine/rng.h"
#include "ops/indexing.h"

namespace indexing_checks {

using backend_checks::kCuda;
using backend_checks::relative_error;
using engine::Dtype;
using engine::Shape;
using engine::Tensor;

// A leaf on each device with the same random values.
struct Leaves {
  Tensor cpu, cuda;
};
inline Leaves random_leaves(const Shape& shape, engine::Generator& gen, Dtype dtype) {
  Tensor cpu = Tensor::randn(shape, gen, dtype);
  Tensor cuda = cpu.to(kCuda);
  cpu.requires_grad_();
  cuda.requires_grad_();
  return {cpu, cuda};
}

inline std::vector<int64_t> random_indices(int64_t n, int64_t size, engine::Generator& gen) {
  std::vector<int64_t> values(size_t(n), 0);
  for (int64_t& v : values) v = std::min<int64_t>(size - 1, int64_t(gen.uniform() * double(size)));
  return values;
}

// Back-propagates a random seed from both outputs and checks the outputs are equal.
inline void backward_both(const Tensor& out_cpu, const Tensor& out_cuda, engine::Generator& gen) {
  CHECK(out_cuda.device() == kCuda);
  CHECK(relative_error(out_cuda, out_cpu) == 0.0);
  Tensor seed = Tensor::randn(out_cpu.shape(), gen, out_cpu.dtype());
  out_cpu.backward(seed);
  out_cuda.backward(seed.to(kCuda));
}

inline void check_grad(const Leaves& leaves) {
  REQUIRE(leaves.cuda.grad().defined());
  CHECK(leaves.cuda.grad().device() == kCuda);
  CHECK(relative_error(leaves.cuda.grad(), leaves.cpu.grad()) == 0.0);
}

inline void check_concat_split_stack(Dtype dtype) {
  CAPTURE(std::string(engine::dtype_name(dtype)));
  engine::Generator gen(3);
  // concat along dim 1 of (4, 2, 5), a transposed (4, 3, 5) and (4, 1, 5).
  Leaves a = random_leaves({4, 2, 5}, gen, dtype), b = random_leaves({4, 5, 3}, gen, dtype),
         c = random_leaves({4, 1, 5}, gen, dtype);
  Tensor joined_cpu = ops::concat({a.cpu, b.cpu.transpose(1, 2), c.cpu}, 1);
  Tensor joined_cuda = ops::concat({a.cuda, b.cuda.transpose(1, 2), c.cuda}, 1);
  backward_both(joined_cpu, joined_cuda, gen);
  for (const Leaves* leaves : {&a, &b, &c}) check_grad(*leaves);

  // split into 3 pieces along the last dim; the middle one is unused, so its gradient is zeros.
  Leaves x = random_leaves({3, 11}, gen, dtype);
  std::vector<Tensor> pieces_cpu = ops::split(x.cpu, {4, 2, 5}, 1), pieces_cuda = ops::split(x.cuda, {4, 2, 5}, 1);
  for (size_t i = 0; i < pieces_cpu.size(); ++i) CHECK(relative_error(pieces_cuda[i], pieces_cpu[i]) == 0.0);
  backward_both(ops::concat({pieces_cpu[2], pieces_cpu[0]}, 1), ops::concat({pieces_cuda[2], pieces_cuda[0]}, 1),
                gen);
  check_grad(x);

  // stack along a new middle dim.
  Leaves p = random_leaves({4, 6}, gen, dtype), q = random_leaves({6, 4}, gen, dtype);
  backward_both(ops::stack({p.cpu, q.cpu.transpose(0, 1), p.cpu}, 1),
                ops::stack({p.cuda, q.cuda.transpose(0, 1), p.cuda}, 1), gen);
  check_grad(p);
  check_grad(q);
}

// Integer tensors concatenate too (no gradient).
inline void check_concat_integers() {
  for (Dtype dtype : {Dtype::i32, Dtype::i64}) {
    const Tensor a = Tensor::from_indices({1, -2, 3, 4, 5, 6}, {2, 3}, dtype);
    const Tensor b = Tensor::from_indices({7, 8}, {2, 1}, dtype);
    CHECK(ops::concat({a.to(kCuda), b.to(kCuda)}, 1).to_vector<int64_t>() ==
          ops::concat({a, b}, 1).to_vector<int64_t>());
  }
}

// index_select along each dim of x: (5, 7, 6) seen through a permutation, with repeated indices.
inline void check_index_select(Dtype dtype, Dtype index_dtype) {
  CAPTURE(std::string(engine::dtype_name(dtype)));
  CAPTURE(std::string(engine::dtype_name(index_dtype)));
  engine::Generator gen(8);
  const Shape x_shape{5, 7, 6};
  for (int64_t dim = 0; dim < 3; ++dim) {
    CAPTURE(dim);
    Leaves x = random_leaves({6, 7, 5}, gen, dtype);
    const std::vector<int64_t> values = random_indices(11, x_shape[size_t(dim)], gen);
    const Tensor index_cpu = Tensor::from_indices(values, {11}, index_dtype);
    backward_both(ops::index_select(x.cpu.permute({2, 1, 0}), dim, index_cpu),
                  ops::index_select(x.cuda.permute({2, 1, 0}), dim, index_cpu.to(kCuda)), gen);
    check_grad(x);
  }
}

// gather along each dim of x: (5, 7, 6) with an index smaller than x off the gathered dim (x is
// read narrowed), and a non-contiguous index.
inline void check_gather(Dtype dtype, Dtype index_dtype) {
  CAPTURE(std::string(engine::dtype_name(dtype)));
  CAPTURE(std::string(engine::dtype_name(index_dtype)));
  engine::Generator gen(9);
  const Shape x_shape{5, 7, 6};
  for (int64_t dim = 0; dim < 3; ++dim) {
    for (bool smaller : {false, true}) {
      CAPTURE(dim);
      CAPTURE(smaller);
      Leaves x = random_leaves(x_shape, gen, dtype);
      Shape index_shape = smaller ? Shape{4, 5, 3} : x_shape;
      index_shape[size_t(dim)] = 9;
      // Stored transposed in dims 0 and 2, then viewed back: a non-contiguous index.
      const Shape stored{index_shape[2], index_shape[1], index_shape[0]};
      const std::vector<int64_t> values =
          random_indices(index_shape[0] * index_shape[1] * index_shape[2], x_shape[size_t(dim)], gen);
      const Tensor index_cpu = Tensor::from_indices(values, stored, index_dtype).permute({2, 1, 0});
      backward_both(ops::gather(x.cpu, dim, index_cpu), ops::gather(x.cuda, dim, index_cpu.to(kCuda)), gen);
      check_grad(x);
    }
  }
}

inline void check_all() {
  for (Dtype dtype : {Dtype::f32, Dtype::f64}) {
    check_concat_split_stack(dtype);
    for (Dtype index_dtype : {Dtype::i32, Dtype::i64}) {
      check_index_select(dtype, index_dtype);
      check_gather(dtype, index_dtype);
    }
  }
  check_concat_integers();
}

inline void check_errors() {
  engine::Generator gen(10);
  const Tensor x = Tensor::randn({3, 7}, gen, Dtype::f32, kCuda);
  CHECK_THROWS_WITH_AS(ops::index_select(x, 1, Tensor::from_indices({0, 6, 7, -1}, {4}, Dtype::i32, kCuda)),
                       doctest::Contains("index_select: index 7 at position 2 is out of range for dim 1 of size 7"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(ops::gather(x, 0, Tensor::from_indices({0, 1, 2, 3}, {2, 2}, Dtype::i64, kCuda)),
                       doctest::Contains("gather: index 3 at position 3 is out of range for dim 0 of size 3"),
                       engine::Error);
}

}  // namespace indexing_checks
