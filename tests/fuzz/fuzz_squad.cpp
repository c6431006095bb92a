// Fuzz target: question-answering data, the same input read as a SQuAD JSON file and as the QA
// jsonl format (one example per line).
#include "data/squad.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz_input::InputFile file("squad");
  const std::string& path = file.write(fuzz_input::as_text(data, size));
  fuzz_input::expect_clean_error([&] { data::flatten(data::read_squad(path)); });
  fuzz_input::expect_clean_error([&] { data::read_qa_jsonl(path); });
  return 0;
}
