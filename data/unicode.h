// UTF-8 decoding and the Unicode character classes of GPT-2's pre-tokenisation regex. Decoding is
// lenient: a byte that does not start a well-formed UTF-8 sequence (stray continuation byte,
// truncated or overlong sequence, surrogate, code point above U+10FFFF) is one unit of its own,
// classified as `other`, so that any byte string can be split and reassembled exactly.
#pragma once

#include <cstddef>
#include <string_view>

namespace data {

// One decoded unit of a byte string: a code point and its byte length (1 and `valid` false for
// an invalid byte, whose `value` is then the byte itself).
struct Utf8Unit {
  char32_t value;
  int length;
  bool valid;
};

// Decodes the unit starting at byte `pos` (< text.size()).
Utf8Unit decode_utf8(std::string_view text, size_t pos);

// The classes GPT-2's regex distinguishes: \p{L}, \p{N}, \s, and everything else.
enum class CharClass { letter, number, space, other };

// Class of a valid code point (tables generated from Unicode by scripts/gen_unicode_tables.py).
CharClass classify(char32_t code_point);

// Class of a decoded unit: invalid bytes are `other`.
inline CharClass classify(const Utf8Unit& unit) {
  return unit.valid ? classify(unit.value) : CharClass::other;
}

}  // namespace data
