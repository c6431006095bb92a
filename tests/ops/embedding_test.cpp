// embedding: hand-computed lookup and gradient, gradcheck (f64) on a non-contiguous table,
// out-of-range errors, and a scatter-add that does not depend on the thread count.
#include <doctest/doctest.h>
#include <omp.h>

#include "engine/autograd.h"
#include "engine/gradcheck.h"
#include "engine/rng.h"
#include "ops/embedding.h"

using engine::Dtype;
using engine::Tensor;

TEST_CASE("embedding: hand-computed rows and gradient counts") {
  Tensor table = Tensor::from_vector({0, 1, 10, 11, 20, 21}, {3, 2}, Dtype::f64);
  table.requires_grad_();
  Tensor indices = Tensor::from_indices({2, 0, 2, 2}, {2, 2}, Dtype::i32);
  Tensor out = ops::embedding(indices, table);
  CHECK(out.shape() == engine::Shape{2, 2, 2});
  CHECK(out.to_vector<double>() == std::vector<double>{20, 21, 0, 1, 20, 21, 20, 21});
  out.backward(Tensor::ones({2, 2, 2}, Dtype::f64));
  CHECK(table.grad().to_vector<double>() == std::vector<double>{1, 1, 0, 0, 3, 3});
}

TEST_CASE("embedding gradient (f64 gradcheck) on a transposed table with repeated indices") {
  engine::Generator gen(41);
  Tensor table = Tensor::randn({3, 5}, gen, Dtype::f64).transpose(0, 1).detach();  // (5, 3)
  table.requires_grad_();
  Tensor indices = Tensor::from_indices({4, 1, 1, 0, 4, 4}, {3, 2});
  auto result = engine::gradcheck([&](const std::vector<Tensor>& in) { return ops::embedding(indices, in[0]); },
                                  {table});
  CHECK_MESSAGE(result.ok, result.message);
}

TEST_CASE("embedding: out-of-range indices name the index and V") {
  Tensor table = Tensor::ones({3, 2});
  CHECK_THROWS_WITH_AS(ops::embedding(Tensor::from_indices({0, 5}, {2}), table),
                       doctest::Contains("index 5 at position 1"), engine::Error);
  CHECK_THROWS_WITH_AS(ops::embedding(Tensor::from_indices({-1}, {1}, Dtype::i32), table),
                       doctest::Contains("V = 3"), engine::Error);
  CHECK_THROWS_WITH_AS(ops::embedding(Tensor::ones({2}), table), doctest::Contains("indices must be i32 or i64"),
                       engine::Error);
}

TEST_CASE("embedding gradient does not depend on the thread count") {
  engine::Generator gen(42);
  const Tensor table = Tensor::randn({50, 70}, gen);
  std::vector<int64_t> ids(600);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int64_t(gen.randint(50));
  const Tensor indices = Tensor::from_indices(ids, {20, 30});
  const Tensor seed = Tensor::randn({20, 30, 70}, gen);
  const int previous_threads = omp_get_max_threads();
  auto grad = [&](int threads) {
    omp_set_num_threads(threads);
    Tensor t = table.clone().detach();
    t.requires_grad_();
    ops::embedding(indices, t).backward(seed);
    return t.grad().to_vector<float>();
  };
  const auto one = grad(1), two = grad(2);
  omp_set_num_threads(previous_threads);
  CHECK(one == two);
}
