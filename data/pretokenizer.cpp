// The GPT-2 regex as a hand-written matcher: one function that tries the alternatives in the
// regex's order at a position and returns where the match ends.
#include "data/pretokenizer.h"

#include "data/unicode.h"

namespace data {

namespace {

// Length of a contraction ('s 't 're 've 'm 'll 'd) starting at `begin`, or 0.
size_t contraction_length(std::string_view text, size_t begin) {
  if (text[begin] != '\'' || begin + 1 >= text.size()) return 0;
  const char first = text[begin + 1];
  if (first == 's' || first == 't' || first == 'm' || first == 'd') return 2;
  if (begin + 2 >= text.size()) return 0;
  const char second = text[begin + 2];
  if ((first == 'r' && second == 'e') || (first == 'v' && second == 'e') ||
      (first == 'l' && second == 'l'))
    return 3;
  return 0;
}

// End of the run of units of class `cls` starting at `pos`.
size_t run_end(std::string_view text, size_t pos, CharClass cls) {
  while (pos < text.size()) {
    const Utf8Unit unit = decode_utf8(text, pos);
    if (classify(unit) != cls) break;
    pos += unit.length;
  }
  return pos;
}

}  // namespace

size_t pretoken_end(std::string_view text, size_t begin) {
  if (const size_t length = contraction_length(text, begin)) return begin + length;

  // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional ASCII space, then a run of one class.
  const size_t body = text[begin] == ' ' ? begin + 1 : begin;
  if (body < text.size()) {
    const CharClass cls = classify(decode_utf8(text, body));
    if (cls != CharClass::space) return run_end(text, body, cls);
  }

  // Here text[begin] starts white space (a lone trailing ' ' included). `\s+(?!\S)` takes the
  // whole run if it ends the text, else the run minus its last unit (which then goes with what
  // follows) when that leaves at least one unit; otherwise `\s+` takes the single unit.
  size_t end = begin;
  size_t last_unit_begin = begin;
  int units = 0;
  while (end < text.size()) {
    const Utf8Unit unit = decode_utf8(text, end);
    if (classify(unit) != CharClass::space) break;
    last_unit_begin = end;
    end += unit.length;
    ++units;
  }
  if (end == text.size() || units == 1) return end;
  return last_unit_begin;
}

std::vector<std::string_view> pretokenize(std::string_view text) {
  std::vector<std::string_view> pieces;
  for_each_pretoken(text, [&](std::string_view piece) { pieces.push_back(piece); });
  return pieces;
}

}  // namespace data
