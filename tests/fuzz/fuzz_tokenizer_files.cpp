// Fuzz target: GPT-2 tokenizer files. The input is vocab.json, a NUL byte, then merges.txt. A
// tokenizer that loads must round-trip text: decode(encode(x)) == x for the input itself.
#include <cstdlib>

#include "data/bpe_tokenizer.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz_input::InputFile vocab("vocab.json"), merges("merges.txt");
  const std::string_view text = fuzz_input::as_text(data, size);
  const size_t nul = std::min(text.find('\0'), text.size());
  const std::string& vocab_path = vocab.write(text.substr(0, nul));
  const std::string& merges_path = merges.write(text.substr(std::min(nul + 1, text.size())));
  fuzz_input::expect_clean_error([&] {
    const data::BpeTokenizer tokenizer = data::BpeTokenizer::load(vocab_path, merges_path);
    const std::vector<data::TokenId> ids = tokenizer.encode(text);
    if (tokenizer.decode(ids) != text) std::abort();
  });
  return 0;
}
