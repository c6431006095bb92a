// Hard negatives by random digit edits (seqpe/hard_negatives.h): insert, swap, replace, delete
// within the range's limits.
#include "seqpe/hard_negatives.h"

#include <algorithm>
#include <array>

#include "seqpe/position_tokenizer.h"
#include "seqpe/random_sampling.h"

namespace seqpe {

namespace {

using Digits = std::vector<int64_t>;

bool within_value_limit(const Digits& digits, const DigitEditLimits& limits) {
  return limits.value_limit == 0 || value_of(digits, limits.base) < limits.value_limit;
}

// Inserts a random digit at a random slot (0 .. n); a digit put in front must not be 0.
std::optional<Digits> insert_digit(const Digits& s, const DigitEditLimits& limits, engine::Generator& gen) {
  const int64_t n = int64_t(s.size());
  if (n >= limits.max_length) return std::nullopt;
  const int64_t slot = int64_t(gen.randint(uint64_t(n + 1)));
  const int64_t digit = slot == 0 ? 1 + int64_t(gen.randint(uint64_t(limits.base - 1)))
                                  : int64_t(gen.randint(uint64_t(limits.base)));
  Digits result = s;
  result.insert(result.begin() + slot, digit);
  if (!within_value_limit(result, limits)) return std::nullopt;
  return result;
}

// Swaps two digits. A pair that would bring a 0 to the front, or leave the string unchanged, is
// redrawn up to 10 times, as in the reference.
std::optional<Digits> swap_digits(const Digits& s, const DigitEditLimits& limits, engine::Generator& gen) {
  const int64_t n = int64_t(s.size());
  if (n == 1 || (n == 2 && (s[1] == 0 || s[0] == s[1]))) return std::nullopt;
  for (int tries = 0;; ++tries) {
    std::vector<int64_t> pair = sample_without_replacement(n, 2, gen);
    const size_t i = size_t(std::min(pair[0], pair[1]));
    const size_t j = size_t(std::max(pair[0], pair[1]));
    const bool zero_to_front = i == 0 && s[j] == 0;
    if (!zero_to_front && s[i] != s[j]) {
      Digits result = s;
      std::swap(result[i], result[j]);
      if (!within_value_limit(result, limits)) return std::nullopt;
      return result;
    }
    if (tries == 10) return std::nullopt;
  }
}

// Replaces one digit by a different one, never a 0 in front: uniform over the valid
// (slot, digit) pairs, which is the distribution of the reference's rejection loop.
std::optional<Digits> replace_digit(const Digits& s, const DigitEditLimits& limits, engine::Generator& gen) {
  const int64_t n = int64_t(s.size());
  auto choices_at = [&](int64_t slot) {
    // Every digit but the current one, and not 0 in front (unless 0 is the current digit).
    return limits.base - 1 - ((slot == 0 && s[0] != 0) ? 1 : 0);
  };
  int64_t total = 0;
  for (int64_t slot = 0; slot < n; ++slot) total += choices_at(slot);
  if (total == 0) return std::nullopt;
  int64_t pick = int64_t(gen.randint(uint64_t(total)));
  int64_t slot = 0;
  while (pick >= choices_at(slot)) pick -= choices_at(slot++);
  // The pick-th digit, in increasing order, among those allowed at this slot.
  int64_t digit = slot == 0 ? 1 : 0;
  for (;; ++digit) {
    if (digit == s[size_t(slot)]) continue;
    if (pick-- == 0) break;
  }
  Digits result = s;
  result[size_t(slot)] = digit;
  if (!within_value_limit(result, limits)) return std::nullopt;
  return result;
}

// Deletes one digit; deleting the first digit is not allowed when it would expose a 0.
std::optional<Digits> delete_digit(const Digits& s, engine::Generator& gen) {
  const int64_t n = int64_t(s.size());
  if (n == 1) return std::nullopt;
  int64_t slot = int64_t(gen.randint(uint64_t(n)));
  if (slot == 0 && s[1] == 0) slot = 1 + int64_t(gen.randint(uint64_t(n - 1)));
  Digits result = s;
  result.erase(result.begin() + slot);
  return result;
}

// Drops leading zeros, keeping at least one digit: the digits of the value, as Python's
// str(int(...)) gives them.
Digits canonical(Digits digits) {
  size_t first = 0;
  while (first + 1 < digits.size() && digits[first] == 0) ++first;
  digits.erase(digits.begin(), digits.begin() + int64_t(first));
  return digits;
}

}  // namespace

std::optional<std::vector<int64_t>> random_digit_edits(std::span<const int64_t> digits, const DigitEditLimits& limits,
                                                       engine::Generator& gen) {
  const Digits pivot(digits.begin(), digits.end());
  const int64_t wanted = 1 + int64_t(gen.randint(3));
  int64_t done = 0;
  Digits current = pivot;
  for (int64_t attempt = 0; attempt < kMaxEditAttempts; ++attempt) {
    std::optional<Digits> edited;
    switch (gen.randint(4)) {
      case 0: edited = insert_digit(current, limits, gen); break;
      case 1: edited = swap_digits(current, limits, gen); break;
      case 2: edited = replace_digit(current, limits, gen); break;
      default: edited = delete_digit(current, gen); break;
    }
    if (!edited || *edited == pivot) continue;
    current = std::move(*edited);
    if (++done == wanted) return current;
  }
  return std::nullopt;
}

HardNegativeGenerator::HardNegativeGenerator(const PositionRange& range, int64_t base)
    : range_(range), base_(base), max_digits_(digit_count(range.side() - 1, base)) {
  ENGINE_CHECK(range.dims() == 1 || range.dims() == 2, "HardNegativeGenerator: positions must be 1-D or 2-D, got ",
               range.dims(), "-D");
  ENGINE_CHECK(base >= 2, "HardNegativeGenerator: base must be at least 2, got ", base);
  limits_.base = base;
  limits_.max_length = range.dims() * max_digits_;
  limits_.value_limit = range.dims() == 1 ? range.side() : 0;
}

std::optional<int64_t> HardNegativeGenerator::generate(int64_t pivot_index, engine::Generator& gen) const {
  if (range_.dims() == 1) {
    const std::optional<Digits> edited = random_digit_edits(digits_of(pivot_index, base_), limits_, gen);
    if (!edited) return std::nullopt;
    return value_of(*edited, base_);
  }
  std::array<int64_t, 2> pivot{};
  range_.coordinates(pivot_index, pivot.data());
  Digits joined = digits_of(pivot[0], base_);
  const Digits col = digits_of(pivot[1], base_);
  joined.insert(joined.end(), col.begin(), col.end());
  const std::optional<Digits> edited = random_digit_edits(canonical(std::move(joined)), limits_, gen);
  if (!edited) return std::nullopt;
  return split_into_position(canonical(*edited), gen);
}

std::optional<int64_t> HardNegativeGenerator::split_into_position(std::vector<int64_t> digits,
                                                                  engine::Generator& gen) const {
  if (digits.size() < 2) {
    if (gen.uniform() < 0.5) {
      digits.push_back(0);
    } else {
      digits.insert(digits.begin(), 0);
    }
  }
  // The reference redraws the cut k in [1, max_digits] until both parts have 1..max_digits digits:
  // a uniform choice among the valid cuts. Cuts giving a coordinate outside the range are not valid
  // either (only possible when the side is not a power of the base).
  const int64_t n = int64_t(digits.size());
  std::vector<int64_t> valid_indices;
  for (int64_t k = 1; k <= max_digits_; ++k) {
    if (n - k < 1 || n - k > max_digits_) continue;
    const int64_t row = value_of(std::span<const int64_t>(digits.data(), size_t(k)), base_);
    const int64_t col = value_of(std::span<const int64_t>(digits.data() + k, size_t(n - k)), base_);
    if (row < range_.side() && col < range_.side()) valid_indices.push_back(row * range_.side() + col);
  }
  if (valid_indices.empty()) return std::nullopt;
  return valid_indices[size_t(gen.randint(valid_indices.size()))];
}

}  // namespace seqpe
