// concat, split, stack, index_select, gather: hand-computed values, gradcheck (f64) on
// non-contiguous inputs, split pieces whose gradients are zeros, and index errors.
#include <doctest/doctest.h>

#include "engine/autograd.h"
#include "engine/gradcheck.h"
#include "engine/rng.h"
#include "ops/indexing.h"

using engine::Dtype;
using engine::Shape;
using engine::Tensor;

namespace {

Tensor leaf(const Shape& shape, engine::Generator& gen) {
  Tensor t = Tensor::randn(shape, gen, Dtype::f64);
  t.requires_grad_();
  return t;
}

// A non-contiguous leaf: a fresh (b, a) tensor seen as (a, b).
Tensor transposed_leaf(int64_t a, int64_t b, engine::Generator& gen) {
  Tensor t = Tensor::randn({b, a}, gen, Dtype::f64).transpose(0, 1).detach();
  t.requires_grad_();
  return t;
}

void check_gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& inputs) {
  auto result = engine::gradcheck(fn, inputs);
  CHECK_MESSAGE(result.ok, result.message);
}

}  // namespace

TEST_CASE("concat and stack: hand-computed values") {
  Tensor a = Tensor::from_vector({1, 2, 3, 4}, {2, 2}), b = Tensor::from_vector({5, 6}, {2, 1});
  CHECK(ops::concat({a, b}, 1).to_vector<double>() == std::vector<double>{1, 2, 5, 3, 4, 6});
  CHECK(ops::concat({a, b.transpose(0, 1)}, 0).to_vector<double>() == std::vector<double>{1, 2, 3, 4, 5, 6});
  Tensor c = Tensor::from_vector({7, 8, 9, 10}, {2, 2});
  Tensor s = ops::stack({a, c}, 1);
  CHECK(s.shape() == Shape{2, 2, 2});
  CHECK(s.to_vector<double>() == std::vector<double>{1, 2, 7, 8, 3, 4, 9, 10});
  CHECK(ops::stack({a, c}, -1).to_vector<double>() == std::vector<double>{1, 7, 2, 8, 3, 9, 4, 10});
  Tensor i = ops::concat({Tensor::from_indices({1, 2}, {2}), Tensor::from_indices({3}, {1})}, 0);
  CHECK(i.to_vector<int64_t>() == std::vector<int64_t>{1, 2, 3});
}

TEST_CASE("concat and stack gradients (f64 gradcheck)") {
  engine::Generator gen(51);
  check_gradcheck([](const std::vector<Tensor>& in) { return ops::concat(in, 1); },
                  {leaf({2, 3, 4}, gen), leaf({2, 1, 4}, gen), Tensor::randn({2, 2, 4}, gen, Dtype::f64)});
  check_gradcheck([](const std::vector<Tensor>& in) { return ops::concat(in, 0); },
                  {transposed_leaf(3, 5, gen), leaf({2, 5}, gen)});
  check_gradcheck([](const std::vector<Tensor>& in) { return ops::stack(in, 1); },
                  {transposed_leaf(3, 4, gen), leaf({3, 4}, gen)});
}

TEST_CASE("split returns views; unused pieces get zero gradients") {
  Tensor x = Tensor::from_vector({0, 1, 2, 3, 4, 5, 6, 7}, {2, 4}, Dtype::f64);
  x.requires_grad_();
  std::vector<Tensor> pieces = ops::split(x, {1, 3}, 1);
  REQUIRE(pieces.size() == 2);
  CHECK(pieces[0].to_vector<double>() == std::vector<double>{0, 4});
  CHECK(pieces[1].to_vector<double>() == std::vector<double>{1, 2, 3, 5, 6, 7});
  CHECK(pieces[1].storage() == x.storage());
  pieces[1].backward(Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}, Dtype::f64));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 1, 2, 3, 0, 4, 5, 6});

  engine::Generator gen(52);
  Tensor y = transposed_leaf(6, 3, gen);  // (6, 3), non-contiguous
  check_gradcheck([](const std::vector<Tensor>& in) { return ops::split(in[0], {2, 0, 4}, 0)[2]; }, {y});
  check_gradcheck([](const std::vector<Tensor>& in) { return ops::split(in[0], {1, 2}, -1)[0]; }, {y});
  CHECK_THROWS_WITH_AS(ops::split(x, {1, 2}, 1), doctest::Contains("add up to 3 but dim 1"), engine::Error);
}

TEST_CASE("index_select: values, repeated indices in the gradient, errors") {
  Tensor x = Tensor::from_vector({0, 1, 2, 10, 11, 12}, {2, 3}, Dtype::f64);
  x.requires_grad_();
  Tensor index = Tensor::from_indices({2, 0, 2}, {3}, Dtype::i32);
  Tensor out = ops::index_select(x, 1, index);
  CHECK(out.to_vector<double>() == std::vector<double>{2, 0, 2, 12, 10, 12});
  out.backward(Tensor::ones({2, 3}, Dtype::f64));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{1, 0, 2, 1, 0, 2});

  engine::Generator gen(53);
  Tensor rows = Tensor::from_indices({3, 1, 3, 0}, {4});
  check_gradcheck([&](const std::vector<Tensor>& in) { return ops::index_select(in[0], 0, rows); },
                  {transposed_leaf(4, 3, gen)});
  check_gradcheck([&](const std::vector<Tensor>& in) { return ops::index_select(in[0], 1, rows); },
                  {leaf({2, 5, 3}, gen)});
  CHECK_THROWS_WITH_AS(ops::index_select(x, 1, Tensor::from_indices({0, 3}, {2})),
                       doctest::Contains("index 3 at position 1 is out of range for dim 1 of size 3"), engine::Error);
  CHECK_THROWS_WITH_AS(ops::index_select(x, 0, Tensor::from_indices({0}, {1, 1})),
                       doctest::Contains("index must be 1-D"), engine::Error);
}

TEST_CASE("gather: PyTorch semantics, gradient, smaller index, errors") {
  // out[i][j] = x[i][index[i][j]] for dim = 1.
  Tensor x = Tensor::from_vector({0, 1, 2, 10, 11, 12}, {2, 3}, Dtype::f64);
  x.requires_grad_();
  Tensor index = Tensor::from_indices({2, 2, 0, 1}, {2, 2});
  Tensor out = ops::gather(x, 1, index);
  CHECK(out.to_vector<double>() == std::vector<double>{2, 2, 10, 11});
  out.backward(Tensor::ones({2, 2}, Dtype::f64));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 0, 2, 1, 1, 0});
  // dim = 0 with an index narrower than x in dim 1.
  CHECK(ops::gather(x.detach(), 0, Tensor::from_indices({1, 0}, {1, 2})).to_vector<double>() ==
        std::vector<double>{10, 1});

  engine::Generator gen(54);
  Tensor idx = Tensor::from_indices({1, 0, 3, 3, 2, 0}, {2, 3, 1});  // smaller than x in dim 2
  check_gradcheck([&](const std::vector<Tensor>& in) { return ops::gather(in[0], 1, idx); }, {leaf({2, 4, 3}, gen)});
  Tensor idx0 = Tensor::from_indices({2, 0, 1, 1, 2, 2}, {2, 3});
  check_gradcheck([&](const std::vector<Tensor>& in) { return ops::gather(in[0], 0, idx0); },
                  {transposed_leaf(3, 4, gen)});
  CHECK_THROWS_WITH_AS(ops::gather(x, 1, Tensor::from_indices({3}, {1, 1})),
                       doctest::Contains("index 3 at position 0 is out of range for dim 1 of size 3"), engine::Error);
  CHECK_THROWS_WITH_AS(ops::gather(x, 1, Tensor::from_indices({0}, {1})), doctest::Contains("must have the rank"),
                       engine::Error);
}
