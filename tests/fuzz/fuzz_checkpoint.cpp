// Fuzz target: a checkpoint's metadata. The input's lines are the values of "format_version", "step",
// "generators" and "extra" (the format name is right, so parsing gets past it); they are stored in
// a valid safetensors file with one model and one optimizer tensor, which load_checkpoint reads.
#include <nlohmann/json.hpp>

#include "engine/checkpoint.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz_input::InputFile file("checkpoint");
  const std::string_view text = fuzz_input::as_text(data, size);
  const char* fields[] = {"format_version", "step", "generators", "extra"};
  nlohmann::json metadata = {{"format", "seqpe-engine-checkpoint"}};
  size_t at = 0;
  for (const char* field : fields) {
    const size_t end = std::min(text.find('\n', at), text.size());
    metadata[field] = std::string(text.substr(std::min(at, text.size()), end - std::min(at, text.size())));
    at = end + 1;
  }
  const nlohmann::json header = {{"__metadata__", metadata},
                                 {"model.w", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 8}}}},
                                 {"optim.m", {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {8, 12}}}}};
  const std::string header_text = header.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string bytes(8, '\0');
  const uint64_t length = header_text.size();
  for (int i = 0; i < 8; ++i) bytes[size_t(i)] = char((length >> (8 * i)) & 0xff);
  bytes += header_text + std::string(12, '\0');
  const std::string& path = file.write(bytes);
  fuzz_input::expect_clean_error([&] { engine::load_checkpoint(path); });
  return 0;
}
