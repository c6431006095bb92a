// Learning byte-level BPE merges from text, GPT-2 style: the text is pre-tokenised with GPT-2's
// regex (merges never cross piece boundaries), each distinct piece is counted once with its
// frequency, and the most frequent adjacent pair of tokens is merged until the vocabulary is full.
//
// Vocabulary layout (as GPT-2's): ids 0..255 are the single bytes in the order of their GPT-2 code
// points (data/byte_unicode.h), then one id per merge in the order learned, then <|endoftext|>.
// (If a merge yields bytes that an earlier token already has, it reuses that token's id.)
//
// Tie-breaking, so that training is deterministic and does not depend on hashing or thread count:
// among pairs with the same count, the pair whose left token's bytes are lexicographically smallest
// (bytes compared as unsigned) is merged first, then the one whose right token's bytes are smallest.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "data/bpe_tokenizer.h"

namespace data {

// Trains on `texts` (each a separate document; occurrences of <|endoftext|> also separate text and
// are not learned from) until the vocabulary has `vocab_size` tokens (256 bytes + merges + 1), or
// until no pair occurs at least `min_pair_count` times, whichever comes first.
BpeTokenizer train_bpe(std::span<const std::string_view> texts, int64_t vocab_size,
                       int64_t min_pair_count = 2);

}  // namespace data
