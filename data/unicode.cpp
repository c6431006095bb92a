// UTF-8 decoding (RFC 3629 well-formedness) and classification by binary search in range tables.
#include "data/unicode.h"

#include <algorithm>
#include <iterator>

#include "data/unicode_tables.h"

namespace data {

namespace {

using detail::CodePointRange;

template <size_t N>
bool in_ranges(const CodePointRange (&ranges)[N], char32_t cp) {
  const CodePointRange* it = std::upper_bound(
      std::begin(ranges), std::end(ranges), cp,
      [](char32_t value, const CodePointRange& range) { return value < range.first; });
  return it != std::begin(ranges) && cp <= std::prev(it)->last;
}

bool is_continuation(unsigned char byte) { return (byte & 0xC0) == 0x80; }

}  // namespace

Utf8Unit decode_utf8(std::string_view text, size_t pos) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(pos);
  const Utf8Unit invalid{lead, 1, false};
  if (lead < 0x80) return {lead, 1, true};
  int length;
  char32_t value;
  char32_t minimum;
  if ((lead & 0xE0) == 0xC0) {
    length = 2, value = lead & 0x1F, minimum = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, value = lead & 0x0F, minimum = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, value = lead & 0x07, minimum = 0x10000;
  } else {
    return invalid;
  }
  if (pos + length > text.size()) return invalid;
  for (int i = 1; i < length; ++i) {
    if (!is_continuation(byte(pos + i))) return invalid;
    value = (value << 6) | (byte(pos + i) & 0x3F);
  }
  if (value < minimum || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return invalid;
  return {value, length, true};
}

CharClass classify(char32_t cp) {
  if (cp < 0x80) {
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return CharClass::letter;
    if (cp >= '0' && cp <= '9') return CharClass::number;
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return CharClass::space;
    return CharClass::other;
  }
  if (in_ranges(detail::kLetters, cp)) return CharClass::letter;
  if (in_ranges(detail::kNumbers, cp)) return CharClass::number;
  if (in_ranges(detail::kWhiteSpace, cp)) return CharClass::space;
  return CharClass::other;
}

}  // namespace data
