// GPT-2's pre-tokenisation, implemented by hand: the text is split into the successive matches of
//
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// (case-sensitive, alternatives tried in order, each greedy), which together cover every byte.
// BPE merges never cross the boundaries of these pieces. \s is Unicode's White_Space property;
// bytes that are not valid UTF-8 count as neither letter, number nor space (see data/unicode.h),
// so any byte string splits into pieces whose concatenation is the input.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace data {

// End (byte offset) of the piece that starts at `begin` (< text.size()).
size_t pretoken_end(std::string_view text, size_t begin);

// All pieces of `text`, in order; views into `text`.
std::vector<std::string_view> pretokenize(std::string_view text);

// Calls visit(piece) for every piece of `text`, in order, without allocating.
template <typename Visit>
void for_each_pretoken(std::string_view text, Visit&& visit) {
  for (size_t begin = 0; begin < text.size();) {
    const size_t end = pretoken_end(text, begin);
    visit(text.substr(begin, end - begin));
    begin = end;
  }
}

}  // namespace data
