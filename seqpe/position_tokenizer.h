// Position tokenizer (docs/method.md#position-tokens): an n-D integer position becomes a fixed-length sequence of digits,
// the input of the SeqPE encoder.
//
// Legend: N = number of positions, n = dims, M = max_digits (digits per coordinate),
// T = n * M (sequence length), B = base.
//
// Each coordinate is written in base B (10 in the paper) and padded with the digit 0 to M digits,
// on the left by default, so that digits of the same place value always sit in the same slot:
// with M = 5, 123 -> [0,0,1,2,3]. The coordinates' sequences are concatenated row first, then
// column: (2, 3) with M = 2 -> [0,2,0,3]. M = the number of digits of max_position - 1, i.e.
// len(str(PE_MAX_POSITION - 1)) for text (20000 -> 5) and len("99") = 2 for the 100 x 100 image grid.
//
// The pad mask is 1 on real digits and 0 on padding slots. Position 0 has one real digit (the "0"
// in the last slot with left padding). docs/method.md#one-dimensional-positions: the released configs do not use the mask; the
// padding zeros are ordinary "0" tokens.
//
// The largest position the tokenizer accepts is B^M - 1 (99999 for text), not max_position - 1:
// evaluation extrapolates beyond the training range (text up to 32768 with PE_MAX_POSITION 20000,
// docs/method.md#one-dimensional-positions), which is the point of SeqPE. Anything that does not fit in M digits, or is negative,
// is an error rather than a silently truncated digit string.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/tensor.h"
#include "seqpe/position.h"

namespace seqpe {

enum class Padding { left, right };

// Number of base-`base` digits of a non-negative value (0 has one digit).
int64_t digit_count(int64_t value, int64_t base);
// The base-`base` digits of a non-negative value, most significant first, no padding.
std::vector<int64_t> digits_of(int64_t value, int64_t base);
// The value of a most-significant-first digit string (leading zeros allowed).
int64_t value_of(std::span<const int64_t> digits, int64_t base);

// Digits and pad masks of a batch of positions, both i64 of shape (N, T).
struct TokenizedPositions {
  engine::Tensor digits;    // (N, T) in [0, B)
  engine::Tensor pad_mask;  // (N, T) 1 on real digits, 0 on padding
};

class PositionTokenizer {
 public:
  // max_position: the exclusive per-coordinate bound of the training range; it fixes max_digits.
  PositionTokenizer(int64_t dims, int64_t max_position, int64_t base = 10, Padding padding = Padding::left);
  // docs/method.md#position-tokens: reads PE_MAX_POSITION as the size of the whole range, i.e. a sqrt x sqrt grid in 2-D.
  static PositionTokenizer from_pe_max_position(int64_t pe_max_position, int64_t dims, int64_t base = 10,
                                                Padding padding = Padding::left);

  int64_t dims() const { return dims_; }
  int64_t base() const { return base_; }
  Padding padding() const { return padding_; }
  int64_t max_digits() const { return max_digits_; }
  int64_t sequence_length() const { return dims_ * max_digits_; }
  // Exclusive bound on every coordinate: B^M.
  int64_t capacity() const { return capacity_; }

  // Writes the T digits and T mask values of one position of n coordinates.
  void encode_into(std::span<const int64_t> position, int64_t* digits, int64_t* pad_mask) const;
  // The T digits of one position.
  std::vector<int64_t> encode(std::span<const int64_t> position) const;
  // Digits and pad masks of every position of the list, (N, T) each.
  TokenizedPositions encode_batch(const PositionList& positions) const;

 private:
  int64_t dims_;
  int64_t base_;
  Padding padding_;
  int64_t max_digits_;
  int64_t capacity_;
};

}  // namespace seqpe
