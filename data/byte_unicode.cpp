// Tables for GPT-2's byte <-> code point bijection, built once.
#include "data/byte_unicode.h"

#include <algorithm>

#include "data/unicode.h"

namespace data {

namespace {

bool maps_to_itself(int byte) {
  return (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) || (byte >= 0xAE);
}

struct ByteTables {
  std::array<char32_t, 256> code_point{};
  std::array<uint8_t, 256> by_code_point{};
  // Code points 0..0x143 -> byte + 1 (0: stands for no byte).
  std::array<uint16_t, 0x144> byte_plus_one{};

  ByteTables() {
    char32_t next_shifted = 0x100;
    for (int byte = 0; byte < 256; ++byte) {
      code_point[byte] = maps_to_itself(byte) ? static_cast<char32_t>(byte) : next_shifted++;
      byte_plus_one[code_point[byte]] = static_cast<uint16_t>(byte + 1);
    }
    for (int byte = 0; byte < 256; ++byte) by_code_point[byte] = static_cast<uint8_t>(byte);
    std::sort(by_code_point.begin(), by_code_point.end(),
              [&](uint8_t a, uint8_t b) { return code_point[a] < code_point[b]; });
  }
};

const ByteTables& tables() {
  static const ByteTables instance;
  return instance;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else {
    // Every code point of the mapping is below U+0800: two bytes.
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace

char32_t byte_to_code_point(uint8_t byte) { return tables().code_point[byte]; }

const std::array<uint8_t, 256>& bytes_in_code_point_order() { return tables().by_code_point; }

std::string bytes_to_token_text(std::string_view bytes) {
  std::string text;
  text.reserve(bytes.size() * 2);
  for (char byte : bytes) append_utf8(text, tables().code_point[static_cast<uint8_t>(byte)]);
  return text;
}

std::optional<std::string> token_text_to_bytes(std::string_view text) {
  std::string bytes;
  bytes.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const Utf8Unit unit = decode_utf8(text, pos);
    if (!unit.valid || unit.value >= tables().byte_plus_one.size()) return std::nullopt;
    const uint16_t byte_plus_one = tables().byte_plus_one[unit.value];
    if (byte_plus_one == 0) return std::nullopt;
    bytes += static_cast<char>(byte_plus_one - 1);
    pos += unit.length;
  }
  return bytes;
}

}  // namespace data
