// Whether two tokenizers are the same: a model must be evaluated on tokens from the tokenizer it was
// trained with. Equal vocabulary sizes are not enough (two corpora trained to 2048 tokens each encode
// the same text to different ids), so the tokens' bytes and the merges are compared.
#pragma once

#include <string>

#include "data/bpe_tokenizer.h"

namespace data {

// Throws engine::Error unless `a` and `b` have the same tokens (bytes, by id), merges (in rank order)
// and end-of-text id. The error names both (`a_name`, `b_name`, e.g. the folders they came from) and
// the first difference.
void check_same_tokenizer(const BpeTokenizer& a, const std::string& a_name, const BpeTokenizer& b,
                          const std::string& b_name);

}  // namespace data
