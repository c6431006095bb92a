// Tokenizer comparison (same_tokenizer.h).
#include "data/same_tokenizer.h"

#include "data/byte_unicode.h"
#include "engine/error.h"

namespace data {

void check_same_tokenizer(const BpeTokenizer& a, const std::string& a_name, const BpeTokenizer& b,
                          const std::string& b_name) {
  const std::string both = "the tokenizers of " + a_name + " and " + b_name;
  const auto fail = [&](const std::string& difference) {
    throw engine::Error(both + " differ (" + difference + "): evaluate on a corpus tokenized as the model's was");
  };
  if (a.vocab_size() != b.vocab_size())
    fail(engine::detail::concat(a.vocab_size(), " tokens against ", b.vocab_size()));
  for (TokenId id = 0; id < a.vocab_size(); ++id)
    if (a.token_bytes(id) != b.token_bytes(id))
      fail(engine::detail::concat("token ", id, " is \"", bytes_to_token_text(a.token_bytes(id)), "\" against \"",
                                  bytes_to_token_text(b.token_bytes(id)), "\""));
  if (a.merges().size() != b.merges().size())
    fail(engine::detail::concat(a.merges().size(), " merges against ", b.merges().size()));
  for (size_t rank = 0; rank < a.merges().size(); ++rank)
    if (!(a.merges()[rank] == b.merges()[rank])) fail(engine::detail::concat("merge ", rank, " differs"));
  if (a.end_of_text() != b.end_of_text()) fail("the end-of-text ids differ");
}

}  // namespace data
