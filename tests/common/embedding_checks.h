// One check body for embedding on CUDA, compared with the CPU op: i32 and i64 indices with many
// repeats, fewer table rows than backward buckets and more (rows sharing a bucket), channels
// spanning several column blocks, non-contiguous indices and table, and the out-of-range error
// found on the device. Run by tests/ops_emu and tests/ops_gpu.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "common/backend_checks.h"
#include "common/cuda_op_compare.h"
#include "engine/rng.h"
#include "ops/embedding.h"

namespace embedding_checks {

using cuda_op_compare::Input;
using engine::Dtype;
using engine::Tensor;

// Indices drawn uniformly from [0, V): with N > V, many rows are looked up several times.
inline Tensor random_indices(const engine::Shape& shape, int64_t V, Dtype index_dtype, engine::Generator& gen) {
  std::vector<int64_t> values(size_t(engine::shape_numel(shape)));
  for (int64_t& v : values) v = std::min(V - 1, int64_t(std::floor(gen.uniform() * double(V))));
  return Tensor::from_indices(values, shape, index_dtype);
}

inline void check_embedding(engine::Generator& gen, Dtype dtype, Dtype index_dtype) {
  const double tolerance = cuda_op_compare::tolerance_for(dtype);
  auto random = [&](const engine::Shape& shape) { return Tensor::randn(shape, gen, dtype); };
  auto embedding = [](const std::vector<Tensor>& in) { return ops::embedding(in[0], in[1]); };
  auto transposed = [](const Tensor& t) { return t.transpose(0, 1); };
  struct Case {
    const char* name;
    std::vector<Input> inputs;
  };
  const std::vector<Case> cases = {
      {"few rows, many repeats", {{random_indices({3, 17}, 11, index_dtype, gen), {}, false}, {random({11, 37})}}},
      // 150 rows > 64 buckets; 300 channels: three backward column blocks, two forward ones.
      {"rows sharing buckets, wide", {{random_indices({200}, 150, index_dtype, gen), {}, false}, {random({150, 300})}}},
      {"non-contiguous indices and table",
       {{random_indices({9, 4}, 70, index_dtype, gen), transposed, false}, {random({5, 70}), transposed}}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    cuda_op_compare::check_forward_backward(embedding, c.inputs, gen, tolerance);
  }

  // Each table entry gets its terms in index order on one thread, as on the CPU: the same bits.
  const Tensor indices = random_indices({90}, 20, index_dtype, gen), seed = random({90, 45});
  Tensor table_cpu = random({20, 45}), table_cuda = table_cpu.to(backend_checks::kCuda);
  table_cpu.requires_grad_();
  table_cuda.requires_grad_();
  ops::embedding(indices, table_cpu).backward(seed);
  ops::embedding(indices.to(backend_checks::kCuda), table_cuda).backward(seed.to(backend_checks::kCuda));
  CHECK(backend_checks::relative_error(table_cuda.grad(), table_cpu.grad()) == 0.0);

  const Tensor table = Tensor::ones({3, 2}, dtype, backend_checks::kCuda);
  CHECK_THROWS_WITH_AS(ops::embedding(Tensor::from_indices({0, 1, 5, 7}, {4}, index_dtype, backend_checks::kCuda), table),
                       doctest::Contains("index 5 at position 2"), engine::Error);
  CHECK_THROWS_WITH_AS(ops::embedding(Tensor::from_indices({-1}, {1}, index_dtype, backend_checks::kCuda), table),
                       doctest::Contains("V = 3"), engine::Error);
}

}  // namespace embedding_checks
