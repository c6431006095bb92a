// Fuzz target: a whole safetensors file (header length, JSON header, data) through load_safetensors.
#include "engine/safetensors.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz_input::InputFile file("safetensors");
  const std::string& path = file.write(fuzz_input::as_text(data, size));
  fuzz_input::expect_clean_error([&] { engine::load_safetensors(path); });
  return 0;
}
