// Hard negatives for the contrastive objective (docs/method.md#contrastive-sampler): positions whose digit strings look like
// the pivot's but whose values are far from it. 1203 -> 123 (delete), 1302 (swap), 1208 (replace),
// 11203 (insert). They teach the encoder that similar-looking digit sequences need not be close.
//
// A hard negative applies 1 to 3 successful random edits, each chosen uniformly among:
//   insert  a random digit (the length stays <= the limit, no leading zero, value < the limit),
//   swap    two digits (no zero moved to the front, the string must change, 11 tries at most),
//   replace one digit (no leading zero, the digit must change, value < the limit),
//   delete  one digit (no new leading zero).
// An edit whose result equals the pivot's string does not count. In 2-D the coordinates' digits are
// first concatenated into one number ((12, 5) -> 125) and, after editing, split back at a random cut
// that leaves each coordinate at most max_digits digits; a 1-digit result first gets a 0 on a random
// side. The caller filters by distance (ContrastiveSampler); this file only makes the candidates.
//
// Two choices differ from the authors' code, neither changes the default configurations' behaviour:
//   * in 2-D the insert limit is the concatenated length 2 * max_digits (the code compared the
//     concatenated length with max_digits, so a 2-digit string, e.g. (1, 2), could never grow), and
//     the value limit applies to each coordinate after the split (< side) instead of to the
//     concatenated number (< side^2): with side = 100 and 2 digits the two agree;
//   * the random choices are made without rejection loops where the reference's loop was plain
//     rejection sampling (replace picks uniformly among the valid (slot, digit) pairs), and a
//     hard negative gives up after kMaxEditAttempts failed edits, so degenerate ranges cannot hang.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "engine/rng.h"
#include "seqpe/position.h"

namespace seqpe {

struct DigitEditLimits {
  int64_t base = 10;
  int64_t max_length = 5;   // longest digit string allowed
  int64_t value_limit = 0;  // exclusive bound on the edited value; 0 for none
};

// Edit attempts (successful or not) one hard negative may spend before it is abandoned.
constexpr int64_t kMaxEditAttempts = 100;

// Applies 1 to 3 successful random edits to `digits` (most significant first). Returns nullopt when
// kMaxEditAttempts attempts were not enough.
std::optional<std::vector<int64_t>> random_digit_edits(std::span<const int64_t> digits, const DigitEditLimits& limits,
                                                       engine::Generator& gen);

// Makes hard negatives of pivots drawn from a PositionRange (1-D or 2-D), as row-major indices of
// that range.
class HardNegativeGenerator {
 public:
  HardNegativeGenerator(const PositionRange& range, int64_t base);

  // One hard negative of the pivot with this index, or nullopt when the edits gave up or no cut
  // of the edited 2-D string gives coordinates inside the range.
  std::optional<int64_t> generate(int64_t pivot_index, engine::Generator& gen) const;

 private:
  // The 2-D split: the row-major index of the cut of `digits` into (row, col), or nullopt.
  std::optional<int64_t> split_into_position(std::vector<int64_t> digits, engine::Generator& gen) const;

  PositionRange range_;
  int64_t base_;
  int64_t max_digits_;  // digits per coordinate
  DigitEditLimits limits_;
};

}  // namespace seqpe
