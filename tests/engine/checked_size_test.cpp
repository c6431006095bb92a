// Size arithmetic that cannot wrap (engine/checked_size.h) and its users: shape products, tensor
// byte counts and allocator size classes refuse sizes past 2^63 - 1 with an error naming the shape,
// where they used to wrap to a small number (a 2^62-channel LayerNorm weight became a 0-byte buffer
// that the fill then ran past).
#include <doctest/doctest.h>

#include <limits>

#include "engine/allocator.h"
#include "engine/checked_size.h"
#include "engine/tensor.h"

using engine::Error;

TEST_CASE("checked_mul and checked_add refuse results past 2^63 - 1, naming what was sized") {
  CHECK(engine::checked_mul(3, 5, "x") == 15);
  CHECK(engine::checked_mul(uint64_t(1) << 31, uint64_t(1) << 31, "x") == uint64_t(1) << 62);
  CHECK(engine::checked_mul(0, std::numeric_limits<uint64_t>::max(), "x") == 0);
  CHECK(engine::checked_add(engine::kMaxSize - 1, 1, "x") == engine::kMaxSize);
  CHECK_THROWS_WITH_AS(engine::checked_mul(uint64_t(1) << 32, uint64_t(1) << 31, "IDX dims"),
                       doctest::Contains("IDX dims: size 4294967296 * 2147483648 overflows"), Error);
  CHECK_THROWS_AS(engine::checked_mul(uint64_t(1) << 62, 4, "x"), Error);  // 2^64 wraps to 0
  CHECK_THROWS_AS(engine::checked_mul(uint64_t(1) << 62, 2, "x"), Error);  // 2^63 fits u64, not i64
  CHECK_THROWS_AS(engine::checked_add(engine::kMaxSize, 1, "x"), Error);
  CHECK(engine::checked_bytes(1000, 8, "x") == 8000);
  CHECK_THROWS_WITH_AS(engine::checked_bytes(-1, 4, "tokens"), doctest::Contains("tokens: size -1 is negative"), Error);
  CHECK_THROWS_AS(engine::checked_bytes(int64_t(1) << 61, 4, "x"), Error);
}

TEST_CASE("shape_numel and Tensor::empty refuse shapes whose element or byte count wraps") {
  CHECK(engine::shape_numel({}) == 1);
  CHECK(engine::shape_numel({2, 0, int64_t(1) << 62}) == 0);
  CHECK(engine::shape_numel({int64_t(1) << 31, int64_t(1) << 31}) == int64_t(1) << 62);
  // 4 x 2^31 x 2^31 = 2^64 elements: wrapped to 0 before.
  CHECK_THROWS_WITH_AS(engine::shape_numel({4, int64_t(1) << 31, int64_t(1) << 31}),
                       doctest::Contains("shape [4, 2147483648, 2147483648] has more elements than 2^63 - 1"), Error);
  CHECK_THROWS_WITH_AS(engine::shape_numel({3, -2}), doctest::Contains("shape [3, -2] has a negative size"), Error);
  // channels = 2^62 as a LayerNorm weight: 2^62 elements fit, their 2^64 f32 bytes do not.
  CHECK_THROWS_WITH_AS(engine::Tensor::empty({int64_t(1) << 62}),
                       doctest::Contains("f32 tensor of shape [4611686018427387904] needs more than 2^63 - 1 bytes"),
                       Error);
  CHECK_THROWS_AS(engine::Tensor::zeros({int64_t(1) << 61, 3}), Error);
  // A product that overflows int64 on the way through view()'s -1 inference.
  const engine::Tensor t = engine::Tensor::zeros({4});
  CHECK_THROWS_AS(t.view({int64_t(1) << 62, 4, -1}), Error);
}

TEST_CASE("allocation_size_class refuses requests it cannot round without wrapping") {
  CHECK(engine::allocation_size_class(engine::kMaxSize) >= engine::kMaxSize);
  CHECK_THROWS_WITH_AS(engine::allocation_size_class(std::numeric_limits<size_t>::max()),
                       doctest::Contains("more than 2^63 - 1"), Error);
}
