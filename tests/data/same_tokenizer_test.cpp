// check_same_tokenizer: equal vocabulary sizes are not the same tokenizer; the first differing token,
// merge or end-of-text id is named.
#include <doctest/doctest.h>

#include "data/same_tokenizer.h"
#include "engine/error.h"

namespace {

// The 256 byte tokens, then `extra` tokens made by `merges`, then <|endoftext|>.
data::BpeTokenizer tokenizer(const std::vector<std::string>& extra, const std::vector<data::BpeMerge>& merges) {
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.emplace_back(1, char(b));
  tokens.insert(tokens.end(), extra.begin(), extra.end());
  tokens.emplace_back(data::kEndOfText);
  return data::BpeTokenizer(tokens, merges, data::TokenId(tokens.size() - 1));
}

}  // namespace

TEST_CASE("check_same_tokenizer tells apart tokenizers of the same size") {
  const data::BpeTokenizer he_in = tokenizer({"he", "in"}, {{'h', 'e'}, {'i', 'n'}});
  CHECK_NOTHROW(data::check_same_tokenizer(he_in, "corpus A", tokenizer({"he", "in"}, {{'h', 'e'}, {'i', 'n'}}), "B"));
  CHECK_THROWS_WITH_AS(data::check_same_tokenizer(he_in, "corpus A", tokenizer({"he", "at"}, {{'h', 'e'}, {'a', 't'}}),
                                                  "checkpoint B"),
                       doctest::Contains("the tokenizers of corpus A and checkpoint B differ (token 257 is \"in\" against "
                                         "\"at\")"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(data::check_same_tokenizer(he_in, "A", tokenizer({"he"}, {{'h', 'e'}}), "B"),
                       doctest::Contains("259 tokens against 258"), engine::Error);
  // The same tokens, merges in another order: another tokenizer.
  CHECK_THROWS_WITH_AS(data::check_same_tokenizer(he_in, "A", tokenizer({"he", "in"}, {{'i', 'n'}, {'h', 'e'}}), "B"),
                       doctest::Contains("merge 0 differs"), engine::Error);
}
