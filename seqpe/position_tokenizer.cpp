// Digits of positions (seqpe/position_tokenizer.h): padding, masks, batches.
#include "seqpe/position_tokenizer.h"

#include <algorithm>
#include <limits>

namespace seqpe {

int64_t digit_count(int64_t value, int64_t base) {
  ENGINE_CHECK(value >= 0, "digit_count: value must be non-negative, got ", value);
  int64_t count = 1;
  while (value >= base) {
    value /= base;
    ++count;
  }
  return count;
}

std::vector<int64_t> digits_of(int64_t value, int64_t base) {
  std::vector<int64_t> digits(size_t(digit_count(value, base)));
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    *it = value % base;
    value /= base;
  }
  return digits;
}

int64_t value_of(std::span<const int64_t> digits, int64_t base) {
  int64_t value = 0;
  for (int64_t d : digits) value = value * base + d;
  return value;
}

PositionTokenizer::PositionTokenizer(int64_t dims, int64_t max_position, int64_t base, Padding padding)
    : dims_(dims), base_(base), padding_(padding) {
  ENGINE_CHECK(dims >= 1, "PositionTokenizer: dims must be at least 1, got ", dims);
  ENGINE_CHECK(base >= 2, "PositionTokenizer: base must be at least 2, got ", base);
  ENGINE_CHECK(max_position >= 1, "PositionTokenizer: max_position must be positive, got ", max_position);
  max_digits_ = digit_count(max_position - 1, base);
  capacity_ = 1;
  for (int64_t k = 0; k < max_digits_; ++k) {
    ENGINE_CHECK(capacity_ <= std::numeric_limits<int64_t>::max() / base,
                 "PositionTokenizer: ", max_digits_, " base-", base, " digits overflow int64");
    capacity_ *= base;
  }
}

PositionTokenizer PositionTokenizer::from_pe_max_position(int64_t pe_max_position, int64_t dims, int64_t base,
                                                          Padding padding) {
  return PositionTokenizer(dims, per_coordinate_extent(pe_max_position, dims), base, padding);
}

void PositionTokenizer::encode_into(std::span<const int64_t> position, int64_t* digits, int64_t* pad_mask) const {
  ENGINE_CHECK(int64_t(position.size()) == dims_, "PositionTokenizer: a position of ", position.size(),
               " coordinates given to a ", dims_, "-D tokenizer");
  for (int64_t k = 0; k < dims_; ++k) {
    int64_t value = position[size_t(k)];
    ENGINE_CHECK(value >= 0 && value < capacity_, "PositionTokenizer: position ", value, " (coordinate ", k,
                 ") does not fit in ", max_digits_, " base-", base_, " digits; coordinates must lie in [0, ",
                 capacity_ - 1, "]. Raise max_position (which sets max_digits) to encode it.");
    const int64_t real = digit_count(value, base_);
    const int64_t first_real = padding_ == Padding::left ? max_digits_ - real : 0;
    int64_t* out = digits + k * max_digits_;
    int64_t* mask = pad_mask + k * max_digits_;
    std::fill(out, out + max_digits_, int64_t(0));
    std::fill(mask, mask + max_digits_, int64_t(0));
    // Least significant digit first, written from the right end of the real digits.
    for (int64_t slot = first_real + real - 1; slot >= first_real; --slot) {
      out[slot] = value % base_;
      mask[slot] = 1;
      value /= base_;
    }
  }
}

std::vector<int64_t> PositionTokenizer::encode(std::span<const int64_t> position) const {
  std::vector<int64_t> digits(static_cast<size_t>(sequence_length())), mask(static_cast<size_t>(sequence_length()));
  encode_into(position, digits.data(), mask.data());
  return digits;
}

TokenizedPositions PositionTokenizer::encode_batch(const PositionList& positions) const {
  ENGINE_CHECK(positions.dims() == dims_, "PositionTokenizer::encode_batch: ", positions.dims(),
               "-D positions given to a ", dims_, "-D tokenizer");
  const int64_t count = positions.size();
  const int64_t length = sequence_length();
  TokenizedPositions out{engine::Tensor::empty({count, length}, engine::Dtype::i64),
                         engine::Tensor::empty({count, length}, engine::Dtype::i64)};
  int64_t* digits = out.digits.data<int64_t>();
  int64_t* mask = out.pad_mask.data<int64_t>();
  for (int64_t i = 0; i < count; ++i) encode_into(positions[i], digits + i * length, mask + i * length);
  return out;
}

}  // namespace seqpe
