// Fuzz target: an IDX file (plain or gzip-compressed) through read_idx_file.
#include "data/idx_file.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz_input::InputFile file("idx");
  const std::string& path = file.write(fuzz_input::as_text(data, size));
  fuzz_input::expect_clean_error([&] { data::read_idx_file(path); });
  return 0;
}
