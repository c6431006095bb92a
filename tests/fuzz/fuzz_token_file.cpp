// Fuzz target: a binary token file through TokenFile, every token read back.
#include <vector>

#include "data/token_file.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz_input::InputFile file("tokens");
  const std::string& path = file.write(fuzz_input::as_text(data, size));
  fuzz_input::expect_clean_error([&] {
    const data::TokenFile tokens(path);
    std::vector<int64_t> all(size_t(tokens.size()));
    tokens.read(0, std::span<int64_t>(all));
    for (size_t i = 0; i < all.size(); ++i)
      if (tokens.at(int64_t(i)) != all[i]) std::abort();
  });
  return 0;
}
