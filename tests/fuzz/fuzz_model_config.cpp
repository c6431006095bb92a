// Fuzz target: model.json and run configs. The input is parsed as JSON and read as a GPT and a ViT
// model config, as the language model's run config (merged over its defaults, then turned into a
// model config as train_lm does) and as the ViT apps' run config.
#include "apps/lm_run.h"
#include "apps/vit_run.h"
#include "engine/json_read.h"
#include "fuzz_input.h"
#include "models/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json json;
  try {
    json = engine::parse_json(fuzz_input::as_text(data, size), "fuzz input");
  } catch (const engine::Error&) {
    return 0;
  }
  fuzz_input::expect_clean_error([&] { models::gpt_config_from_json(json); });
  fuzz_input::expect_clean_error([&] { models::vit_config_from_json(json); });
  fuzz_input::expect_clean_error([&] { apps::gpt_config(apps::merge_config(apps::default_run_config(), json), 300); });
  fuzz_input::expect_clean_error([&] { apps::vit_run_config_from_json(json, apps::default_vit_run_config()); });
  return 0;
}
