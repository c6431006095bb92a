// GPT-2's bytes_to_unicode: a bijection between the 256 byte values and 256 printable code points,
// used to write byte-level tokens as text in vocab.json and merges.txt. The printable bytes
// '!'..'~', U+00A1..U+00AC and U+00AE..U+00FF map to themselves; the other 68 bytes, in increasing
// order, map to U+0100, U+0101, ... (so the space 0x20 is written 'Ġ' U+0120, newline 'Ċ' U+010A).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace data {

// The code point that stands for `byte`.
char32_t byte_to_code_point(uint8_t byte);

// The 256 bytes in the order of their code points: GPT-2's ids 0..255 are these bytes in this order.
const std::array<uint8_t, 256>& bytes_in_code_point_order();

// UTF-8 text of a token whose bytes are `bytes` (each byte written as its code point).
std::string bytes_to_token_text(std::string_view bytes);

// Inverse of bytes_to_token_text; nullopt when `text` is not valid UTF-8 or holds a code point that
// stands for no byte.
std::optional<std::string> token_text_to_bytes(std::string_view text);

}  // namespace data
