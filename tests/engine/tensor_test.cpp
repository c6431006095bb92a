// Tests of tensors (engine/tensor.h): factories, views, dtype conversion, the caching allocator.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/rng.h"
#include "engine/tensor.h"

using engine::Dtype;
using engine::Tensor;

TEST_CASE("factories fill and report metadata") {
  Tensor t = Tensor::full({2, 3}, 1.5);
  CHECK(t.shape() == engine::Shape{2, 3});
  CHECK(t.strides() == engine::Shape{3, 1});
  CHECK(t.numel() == 6);
  CHECK(t.is_contiguous());
  for (float v : t.to_vector<float>()) CHECK(v == 1.5f);
  CHECK(Tensor::arange(5).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3, 4});
  CHECK_THROWS_WITH_AS(Tensor::empty({2, -1}), doctest::Contains("negative size"), engine::Error);
  engine::Generator gen(3);
  Tensor none = Tensor::randn({4, 0, 3}, gen);  // no elements: contiguous whatever its strides
  CHECK(none.is_contiguous());
  CHECK(none.numel() == 0);
}

TEST_CASE("views share storage and index correctly") {
  Tensor t = Tensor::from_vector({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor tt = t.transpose(0, 1);
  CHECK(tt.shape() == engine::Shape{3, 2});
  CHECK(!tt.is_contiguous());
  CHECK(tt.contiguous().to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});
  CHECK(t.narrow(1, 1, 2).to_vector<float>() == std::vector<float>{1, 2, 4, 5});
  CHECK(t.select(0, 1).to_vector<float>() == std::vector<float>{3, 4, 5});
  CHECK(t.view({3, 2}).to_vector<float>() == std::vector<float>{0, 1, 2, 3, 4, 5});
  CHECK(t.view({-1}).shape() == engine::Shape{6});
  CHECK(t.unsqueeze(1).shape() == engine::Shape{2, 1, 3});
  CHECK(t.unsqueeze(1).squeeze(1).shape() == engine::Shape{2, 3});
  Tensor row = Tensor::from_vector({7, 8, 9}, {1, 3});
  CHECK(row.expand({2, 3}).to_vector<float>() == std::vector<float>{7, 8, 9, 7, 8, 9});
  CHECK(row.expand({2, 3}).strides() == engine::Shape{0, 1});
  // A view of a transposed tensor that would need a copy is refused; reshape copies.
  CHECK_THROWS_WITH_AS(tt.view({6}), doctest::Contains("without a copy"), engine::Error);
  CHECK(tt.reshape({6}).to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});
  CHECK_THROWS_WITH_AS(t.narrow(1, 2, 2), doctest::Contains("out of bounds"), engine::Error);
  CHECK_THROWS_WITH_AS(t.view({4, 2}), doctest::Contains("invalid"), engine::Error);
  CHECK_THROWS_WITH_AS(row.expand({2, 4}), doctest::Contains("cannot be"), engine::Error);
  CHECK_THROWS_WITH_AS(t.squeeze(0), doctest::Contains("not 1"), engine::Error);
  // Views write through to the base.
  {
    engine::NoGradGuard no_grad;
    t.narrow(0, 1, 1).fill_(-1.0);
  }
  CHECK(t.to_vector<float>() == std::vector<float>{0, 1, 2, -1, -1, -1});
}

TEST_CASE("view of a non-contiguous tensor splits and merges compatible dims") {
  Tensor t = Tensor::arange(24, Dtype::f64).view({2, 3, 4}).permute({1, 0, 2});  // (3, 2, 4)
  Tensor v = t.view({3, 2, 2, 2});
  CHECK(v.contiguous().to_vector<double>() == t.contiguous().to_vector<double>());
  // Dims 0 and 1 are not adjacent in memory after the permute: merging them needs a copy.
  CHECK_THROWS_AS(t.view({3, 8}), engine::Error);
  Tensor base = Tensor::arange(24, Dtype::f64).view({2, 3, 4});
  CHECK(base.narrow(2, 1, 2).view({6, 2}).contiguous().to_vector<double>() ==
        base.narrow(2, 1, 2).contiguous().to_vector<double>());
}

TEST_CASE("a scalar views as any shape of one element and back") {
  Tensor scalar = Tensor::full({}, 3.0);
  CHECK(scalar.view({1, 1, 1}).shape() == engine::Shape{1, 1, 1});
  CHECK(scalar.view({1, 1}).view({}).item() == 3.0);
  CHECK(scalar.reshape({1}).item() == 3.0);
}

TEST_CASE("dtype conversion and item") {
  Tensor t = Tensor::from_vector({1.25, -2.5}, {2}, Dtype::f64);
  CHECK(t.to(Dtype::f32).to_vector<float>() == std::vector<float>{1.25f, -2.5f});
  CHECK(t.to(Dtype::i64).to_vector<int64_t>() == std::vector<int64_t>{1, -2});
  CHECK(t.narrow(0, 1, 1).item() == -2.5);
  CHECK_THROWS_WITH_AS(t.item(), doctest::Contains("one-element"), engine::Error);
  CHECK_THROWS_WITH_AS(t.data<float>(), doctest::Contains("f64[2]"), engine::Error);
}

TEST_CASE("caching allocator reuses freed blocks") {
  auto& alloc = engine::cpu_allocator();
  auto before = alloc.stats();
  { Tensor a = Tensor::empty({1000, 1000}); }
  { Tensor b = Tensor::empty({1000, 1000}); }
  auto after = alloc.stats();
  CHECK(after.cache_hits >= before.cache_hits + 1);
  CHECK(engine::allocation_size_class(1) == 512);
  CHECK(engine::allocation_size_class((1 << 20) + 1) == (1 << 20) + (1 << 18));
}

TEST_CASE("reset_peak_stats restarts the peak from the bytes in use") {
  auto& alloc = engine::cpu_allocator();
  { Tensor big = Tensor::empty({3000, 1000}); }
  alloc.reset_peak_stats();
  const auto reset = alloc.stats();
  CHECK(reset.peak_bytes_in_use == reset.bytes_in_use);
  { Tensor small = Tensor::empty({10, 10}); }
  CHECK(alloc.stats().peak_bytes_in_use == reset.bytes_in_use + engine::allocation_size_class(400));
}

TEST_CASE("philox generator: reproducible by (seed, offset) and well distributed") {
  engine::Generator g1(42), g2(42);
  Tensor a = Tensor::randn({1000}, g1, Dtype::f64);
  Tensor b = Tensor::randn({1000}, g2, Dtype::f64);
  CHECK(a.to_vector<double>() == b.to_vector<double>());
  CHECK(g1.offset() == 500);  // two normals per counter block
  // Resuming from a saved state gives the continuation.
  engine::Generator g3(42);
  g3.set_state(42, 500);
  CHECK(Tensor::rand({7}, g1).to_vector<float>() == Tensor::rand({7}, g3).to_vector<float>());
  // Moments of a large normal draw.
  engine::Generator g(7);
  auto x = Tensor::randn({200000}, g, Dtype::f64).to_vector<double>();
  double mean = 0, var = 0;
  for (double v : x) mean += v;
  mean /= double(x.size());
  for (double v : x) var += (v - mean) * (v - mean);
  var /= double(x.size());
  CHECK(std::abs(mean) < 0.01);
  CHECK(std::abs(var - 1.0) < 0.02);
  // Truncated normal respects bounds; bernoulli its rate.
  Tensor tn = Tensor::empty({10000}, Dtype::f64);
  engine::fill_random_(tn, g, {engine::RandomDistribution::truncated_normal, 0.0, 1.0, -0.5, 0.5});
  for (double v : tn.to_vector<double>()) CHECK((v >= -0.5 && v <= 0.5));
  Tensor bern = Tensor::empty({100000}, Dtype::f64);
  engine::fill_random_(bern, g, {engine::RandomDistribution::bernoulli, 0.3});
  double ones = 0;
  for (double v : bern.to_vector<double>()) ones += v;
  CHECK(std::abs(ones / 100000 - 0.3) < 0.01);
  CHECK(std::abs(engine::erfinv(std::erf(0.7)) - 0.7) < 1e-14);
}

// The gradient of a broadcast: each dst element is the sum, in double and in the row-major order of
// the reduced dims, of the src elements that broadcast from it, whatever the strides and threads.
template <typename T>
std::vector<T> sequential_sum_to(const Tensor& src, const engine::Shape& dst_shape) {
  const std::vector<T> values = src.contiguous().to_vector<T>();
  const engine::Shape& shape = src.shape();
  const size_t lead = shape.size() - dst_shape.size();
  std::vector<double> sums(size_t(engine::shape_numel(dst_shape)), 0.0);
  for (int64_t linear = 0; linear < int64_t(values.size()); ++linear) {
    int64_t dst_index = 0, dst_stride = 1, rest = linear;
    for (size_t d = shape.size(); d-- > 0;) {
      const int64_t index = rest % shape[d];
      rest /= shape[d];
      if (d >= lead && dst_shape[d - lead] != 1) {
        dst_index += index * dst_stride;
        dst_stride *= dst_shape[d - lead];
      }
    }
    sums[size_t(dst_index)] += double(values[size_t(linear)]);
  }
  return std::vector<T>(sums.begin(), sums.end());
}

TEST_CASE("sum_to on the CPU sums each broadcast slice in a fixed order, bit for bit") {
  engine::Generator gen(11);
  struct Case {
    Tensor src;
    engine::Shape dst;
  };
  for (Dtype dtype : {Dtype::f32, Dtype::f64}) {
    CAPTURE(engine::dtype_name(dtype));
    const Tensor wide = Tensor::randn({8, 8, 20, 64}, gen, dtype);
    const std::vector<Case> cases = {
        {wide.narrow(3, 32, 32), {1, 8, 20, 32}},       // a head's half of q·k's width, over the batch
        {wide, {8, 1, 20, 1}},                          // kept dims strided, reduced ones between them
        {Tensor::randn({5, 7, 130}, gen, dtype), {7, 1}},  // the innermost dim reduced
        {Tensor::randn({3, 150}, gen, dtype), {150}},   // runs of 64, 64 and 22
        {Tensor::randn({150, 3}, gen, dtype).transpose(0, 1), {150}},  // the same, strided
        {Tensor::randn({70, 8}, gen, dtype).transpose(0, 1), {8, 1}},
        {Tensor::randn({3, 4}, gen, dtype), {}},
        {Tensor::randn({4, 5, 6}, gen, dtype), {4, 5, 6}},
        {Tensor::randn({4, 0, 3}, gen, dtype), {4, 1, 1}},  // nothing to sum: zeros
        {Tensor::randn({0, 5}, gen, dtype), {0, 5}},
    };
    for (const Case& c : cases) {
      CAPTURE(engine::shape_str(c.src.shape()));
      CAPTURE(engine::shape_str(c.dst));
      Tensor dst = Tensor::full(c.dst, std::nan(""), dtype);
      engine::backend_for(engine::DeviceType::cpu).sum_to(dst, c.src);
      if (dtype == Dtype::f32) {
        CHECK(dst.to_vector<float>() == sequential_sum_to<float>(c.src, c.dst));
      } else {
        CHECK(dst.to_vector<double>() == sequential_sum_to<double>(c.src, c.dst));
      }
    }
  }
}
