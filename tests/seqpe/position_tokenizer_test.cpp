// Tests of the position tokenizer (seqpe/position_tokenizer.h): digits, padding sides, batches,
// n-D, other bases.
#include <doctest/doctest.h>

#include <vector>

#include "seqpe/position_tokenizer.h"

using seqpe::Padding;
using seqpe::PositionList;
using seqpe::PositionTokenizer;
using V = std::vector<int64_t>;

namespace {

// Digits and mask of one position, through the batch API.
std::pair<V, V> encode_one(const PositionTokenizer& tokenizer, std::vector<int64_t> position) {
  PositionList list(tokenizer.dims());
  list.push_back(position);
  seqpe::TokenizedPositions t = tokenizer.encode_batch(list);
  return {t.digits.to_vector<int64_t>(), t.pad_mask.to_vector<int64_t>()};
}

}  // namespace

TEST_CASE("digit helpers") {
  CHECK(seqpe::digit_count(0, 10) == 1);
  CHECK(seqpe::digit_count(19999, 10) == 5);
  CHECK(seqpe::digit_count(99, 10) == 2);
  CHECK(seqpe::digit_count(7, 2) == 3);
  CHECK(seqpe::digit_count(255, 16) == 2);
  CHECK(seqpe::digits_of(1203, 10) == V{1, 2, 0, 3});
  CHECK(seqpe::digits_of(0, 10) == V{0});
  CHECK(seqpe::value_of(V{0, 4, 2}, 10) == 42);
  CHECK(seqpe::value_of(V{1, 0, 1}, 2) == 5);
}

TEST_CASE("1-D text tokenizer: the method's example (docs/method.md#one-dimensional-positions), both padding sides") {
  const PositionTokenizer left = PositionTokenizer::from_pe_max_position(20000, 1);
  CHECK(left.max_digits() == 5);  // len(str(19999))
  CHECK(left.sequence_length() == 5);
  CHECK(left.capacity() == 100000);
  auto [digits, mask] = encode_one(left, {123});
  CHECK(digits == V{0, 0, 1, 2, 3});
  CHECK(mask == V{0, 0, 1, 1, 1});
  // Position 0 has one real digit.
  std::tie(digits, mask) = encode_one(left, {0});
  CHECK(digits == V{0, 0, 0, 0, 0});
  CHECK(mask == V{0, 0, 0, 0, 1});
  CHECK(left.encode(V{19999}) == V{1, 9, 9, 9, 9});
  // Evaluation extrapolates beyond PE_MAX_POSITION (32768 positions at most, docs/method.md#one-dimensional-positions).
  CHECK(left.encode(V{32767}) == V{3, 2, 7, 6, 7});

  const PositionTokenizer right = PositionTokenizer::from_pe_max_position(20000, 1, 10, Padding::right);
  std::tie(digits, mask) = encode_one(right, {123});
  CHECK(digits == V{1, 2, 3, 0, 0});
  CHECK(mask == V{1, 1, 1, 0, 0});
  std::tie(digits, mask) = encode_one(right, {10});
  CHECK(digits == V{1, 0, 0, 0, 0});
  CHECK(mask == V{1, 1, 0, 0, 0});
}

TEST_CASE("2-D image tokenizer: the method's example (docs/method.md#grid-positions), both padding sides") {
  const PositionTokenizer left = PositionTokenizer::from_pe_max_position(10000, 2);
  CHECK(left.max_digits() == 2);  // the 100 x 100 grid: len("99")
  CHECK(left.sequence_length() == 4);
  auto [digits, mask] = encode_one(left, {2, 3});
  CHECK(digits == V{0, 2, 0, 3});
  CHECK(mask == V{0, 1, 0, 1});
  CHECK(left.encode(V{99, 7}) == V{9, 9, 0, 7});
  CHECK(left.encode(V{12, 0}) == V{1, 2, 0, 0});

  const PositionTokenizer right = PositionTokenizer::from_pe_max_position(10000, 2, 10, Padding::right);
  std::tie(digits, mask) = encode_one(right, {2, 3});
  CHECK(digits == V{2, 0, 3, 0});
  CHECK(mask == V{1, 0, 1, 0});
  CHECK(right.encode(V{45, 6}) == V{4, 5, 6, 0});
}

TEST_CASE("batch API: (N, n * max_digits) i64 digits and masks, row per position") {
  const PositionTokenizer tokenizer = PositionTokenizer::from_pe_max_position(10000, 2);
  PositionList list(2);
  list.push_back(2, 3);
  list.push_back(0, 0);
  list.push_back(57, 91);
  const seqpe::TokenizedPositions t = tokenizer.encode_batch(list);
  CHECK(t.digits.dtype() == engine::Dtype::i64);
  CHECK(t.pad_mask.dtype() == engine::Dtype::i64);
  CHECK(t.digits.shape() == engine::Shape{3, 4});
  CHECK(t.pad_mask.shape() == engine::Shape{3, 4});
  CHECK(t.digits.to_vector<int64_t>() == V{0, 2, 0, 3, 0, 0, 0, 0, 5, 7, 9, 1});
  CHECK(t.pad_mask.to_vector<int64_t>() == V{0, 1, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1});
  CHECK(list.to_tensor().shape() == engine::Shape{3, 2});
  CHECK(list.to_tensor().to_vector<int64_t>() == V{2, 3, 0, 0, 57, 91});
}

TEST_CASE("n-D positions concatenate their coordinates in order") {
  const PositionTokenizer volume(3, 1000);
  CHECK(volume.max_digits() == 3);
  CHECK(volume.encode(V{1, 20, 300}) == V{0, 0, 1, 0, 2, 0, 3, 0, 0});
  CHECK(PositionTokenizer::from_pe_max_position(1000000, 3).max_digits() == 2);  // a 100^3 volume
}

TEST_CASE("other bases") {
  const PositionTokenizer binary(1, 8, 2);  // positions 0..7 need 3 bits
  CHECK(binary.max_digits() == 3);
  CHECK(binary.encode(V{5}) == V{1, 0, 1});
  CHECK(binary.encode(V{1}) == V{0, 0, 1});
  CHECK_THROWS_WITH_AS(binary.encode(V{8}), doctest::Contains("position 8"), engine::Error);

  const PositionTokenizer hex(1, 256, 16);
  CHECK(hex.max_digits() == 2);
  CHECK(hex.encode(V{171}) == V{10, 11});  // 0xAB
  CHECK(hex.encode(V{15}) == V{0, 15});
  const PositionTokenizer hex_right(2, 256, 16, Padding::right);
  auto [digits, mask] = encode_one(hex_right, {15, 255});
  CHECK(digits == V{15, 0, 15, 15});
  CHECK(mask == V{1, 0, 1, 1});
}

TEST_CASE("positions that do not fit are errors naming the position and the maximum") {
  const PositionTokenizer text = PositionTokenizer::from_pe_max_position(20000, 1);
  CHECK_THROWS_WITH_AS(text.encode(V{100000}), doctest::Contains("position 100000"), engine::Error);
  CHECK_THROWS_WITH_AS(text.encode(V{100000}), doctest::Contains("[0, 99999]"), engine::Error);
  CHECK_THROWS_WITH_AS(text.encode(V{-1}), doctest::Contains("position -1"), engine::Error);
  const PositionTokenizer image = PositionTokenizer::from_pe_max_position(10000, 2);
  CHECK_THROWS_WITH_AS(image.encode(V{3, 100}), doctest::Contains("position 100 (coordinate 1)"), engine::Error);
  CHECK_THROWS_WITH_AS(image.encode(V{-4, 0}), doctest::Contains("[0, 99]"), engine::Error);
  PositionList wrong(1);
  wrong.push_back(3);
  CHECK_THROWS_WITH_AS(image.encode_batch(wrong), doctest::Contains("1-D positions given to a 2-D tokenizer"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(PositionTokenizer::from_pe_max_position(20000, 2), doctest::Contains("is not S^2"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(PositionTokenizer(1, 100, 1), doctest::Contains("base must be at least 2"), engine::Error);
}
