// Fuzz target: command-line values. Each input line is a `--set key=value` assignment applied to the
// language model's default run config as train_lm applies it (value parsed, type checked, merged);
// the value is also read as an integer, a number and an integer list option.
#include "apps/lm_run.h"
#include "apps/option_values.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = fuzz_input::as_text(data, size);
  nlohmann::json config = apps::default_run_config();
  for (size_t at = 0; at <= text.size();) {
    const size_t end = std::min(text.find('\n', at), text.size());
    const std::string line(text.substr(at, end - at));
    at = end + 1;
    const std::string value = line.substr(std::min(line.find('=') + 1, line.size()));
    fuzz_input::expect_clean_error([&] { apps::integer_option("--steps", value); });
    fuzz_input::expect_clean_error([&] { apps::unsigned_option("--seed", value); });
    fuzz_input::expect_clean_error([&] { apps::number_option("--lr", value); });
    fuzz_input::expect_clean_error([&] { apps::integer_list_option("--lengths", value, 1); });
    fuzz_input::expect_clean_error([&] {
      const auto [key, parsed] = apps::parse_assignment(line);
      config = apps::merge_config(config, nlohmann::json{{key, parsed}});
    });
  }
  fuzz_input::expect_clean_error([&] { apps::gpt_config(config, 300); });
  return 0;
}
