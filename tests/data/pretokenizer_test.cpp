// Tests of GPT-2's pre-tokenizer regex (data/pretokenizer.h).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "data/pretokenizer.h"
#include "data/unicode.h"
#include "gpt2_pretokenize_cases.h"

using data::pretokenize;

namespace {

std::vector<std::string> pieces(std::string_view text) {
  std::vector<std::string> out;
  for (std::string_view piece : pretokenize(text)) out.emplace_back(piece);
  return out;
}

using Pieces = std::vector<std::string>;

}  // namespace

TEST_CASE("pretokenizer: words, leading spaces and punctuation") {
  CHECK(pieces("") == Pieces{});
  CHECK(pieces("Hello world") == Pieces{"Hello", " world"});
  CHECK(pieces("Hello!!! ...world?") == Pieces{"Hello", "!!!", " ...", "world", "?"});
  CHECK(pieces("e-mail: a_b") == Pieces{"e", "-", "mail", ":", " a", "_", "b"});
}

TEST_CASE("pretokenizer: contractions are case-sensitive and come first") {
  CHECK(pieces("I'm don't we'll they've you're he'd it's") ==
        Pieces{"I", "'m", " don", "'t", " we", "'ll", " they", "'ve", " you", "'re", " he", "'d",
               " it", "'s"});
  CHECK(pieces("I'M") == Pieces{"I", "'", "M"});
  CHECK(pieces("''s") == Pieces{"''", "s"});
  CHECK(pieces(" 's") == Pieces{" '", "s"});
  CHECK(pieces("'sss'") == Pieces{"'s", "ss", "'"});
  CHECK(pieces("'r") == Pieces{"'", "r"});
}

TEST_CASE("pretokenizer: numbers are runs of \\p{N}, not split into groups") {
  CHECK(pieces("abc123 4567 x2") == Pieces{"abc", "123", " 4567", " x", "2"});
  CHECK(pieces("3.14") == Pieces{"3", ".", "14"});
  // Superscript two and one half are \p{No}; Arabic-Indic digits are \p{Nd}.
  CHECK(pieces("x\u00b2 \u0663\u0664 \u00bd") == Pieces{"x", "\u00b2", " \u0663\u0664", " \u00bd"});
}

TEST_CASE("pretokenizer: unicode letters, marks and symbols") {
  CHECK(pieces("na\u00efve caf\u00e9 \u03a9mega \u65e5\u672c\u8a9e") ==
        Pieces{"na\u00efve", " caf\u00e9", " \u03a9mega", " \u65e5\u672c\u8a9e"});
  // A combining accent is \p{Mn}, not a letter: it splits from the base letter, as in GPT-2.
  CHECK(pieces("e\u0301t\u00e9") == Pieces{"e", "\u0301", "t\u00e9"});
  CHECK(pieces("a \U0001F600\U0001F600b") == Pieces{"a", " \U0001F600\U0001F600", "b"});
}

TEST_CASE("pretokenizer: white space runs and the \\s+(?!\\S) rule") {
  // A run before a word leaves its last unit to the word (if that unit is an ASCII space).
  CHECK(pieces("a   b") == Pieces{"a", "  ", " b"});
  CHECK(pieces("a  ") == Pieces{"a", "  "});
  CHECK(pieces("  hello") == Pieces{" ", " hello"});
  CHECK(pieces("a\n\nb") == Pieces{"a", "\n", "\n", "b"});
  CHECK(pieces("hello \n world") == Pieces{"hello", " \n", " world"});
  CHECK(pieces("x\n\n\n") == Pieces{"x", "\n\n\n"});
  CHECK(pieces("\tfoo") == Pieces{"\t", "foo"});
  CHECK(pieces(" ") == Pieces{" "});
  // Non-ASCII white space is \s but not the optional ' ' of ` ?\p{L}+`.
  CHECK(pieces("a\u00a0\u00a0b") == Pieces{"a", "\u00a0", "\u00a0", "b"});
  CHECK(pieces("a\u3000b") == Pieces{"a", "\u3000", "b"});
  CHECK(pieces("a \u3000 b") == Pieces{"a", " \u3000", " b"});
  // U+001C..U+001F are not White_Space (the `regex` module's \s), unlike Python's str.isspace.
  CHECK(pieces("a\x1c b") == Pieces{"a", "\x1c", " b"});
}

TEST_CASE("pretokenizer: invalid UTF-8 bytes are punctuation-like units") {
  CHECK(pieces("a\xff\xfe" "b \x80") == Pieces{"a", "\xff\xfe", "b", " \x80"});
  // Truncated, overlong and surrogate sequences fall apart into single invalid bytes.
  CHECK(data::decode_utf8("\xe6\x97", 0).valid == false);
  CHECK(data::decode_utf8("\xc0\xaf", 0).valid == false);
  CHECK(data::decode_utf8("\xed\xa0\x80", 0).valid == false);
  CHECK(data::decode_utf8("\xf4\x90\x80\x80", 0).valid == false);
  CHECK(data::decode_utf8("\xf0\x9f\x98\x80", 0).value == U'\U0001F600');
  CHECK(pieces("x\xe6\x97y") == Pieces{"x", "\xe6\x97", "y"});
}

TEST_CASE("pretokenizer: agrees with GPT-2's regex (regex module) on random strings") {
  for (const Gpt2PretokenizeCase& c : kGpt2PretokenizeCases) {
    const std::vector<std::string_view> got = pretokenize(c.text);
    CAPTURE(std::string(c.text));
    CHECK(got == c.pieces);
  }
}
