// A trained GPT's model.json read as one source of truth (seqpe::gpt_config_from_model_json): the
// "model" section builds the model, so that editing it takes effect, and a field the run's "config"
// section states differently is refused, naming the file, the field and both values.
#include <doctest/doctest.h>

#include "engine/error.h"
#include "engine/rng.h"
#include "models/model_config.h"
#include "seqpe/seqpe_models.h"
#include "seqpe/seqpe_options.h"

using nlohmann::json;

namespace {

// The model section train_lm writes for a small SeqPE GPT (options written out in full).
json seqpe_model_section() {
  models::GptConfig c;
  c.vocab_size = 50;
  c.context = 16;
  c.layers = 1;
  c.channels = 16;
  c.heads = 2;
  c.position_encoding = "seqpe";
  c.position_encoding_options = {{"pe_max_position", 1000}};
  return models::gpt_config_to_json(seqpe::with_full_seqpe_options(c));
}

// What that run's config section states: its sizes and the one SeqPE option it set.
json stated_fields() {
  return {{"vocab_size", 50}, {"context", 16}, {"layers", 1}, {"channels", 16}, {"heads", 2},
          {"embedding_dropout", 0.1}, {"residual_dropout", 0.1}, {"attention_dropout", 0.1},
          {"position_encoding", "seqpe"}, {"position_encoding_options", {{"pe_max_position", 1000}}}};
}

}  // namespace

TEST_CASE("model.json: the model section as written gives the same config") {
  const json section = seqpe_model_section();
  const models::GptConfig config = seqpe::gpt_config_from_model_json(section, stated_fields(), "run/best.model.json");
  CHECK(models::gpt_config_to_json(config) == section);
}

TEST_CASE("model.json: an edit of the model section alone takes effect when the config section does not state it") {
  json section = seqpe_model_section();
  section["position_encoding_options"]["scalar_scale"] = 0.0;
  section["position_encoding_options"]["encoder"]["residual_dropout"] = 0.0;
  section["init_std"] = 0.05;
  const models::GptConfig config = seqpe::gpt_config_from_model_json(section, stated_fields(), "run/best.model.json");
  CHECK(config.init_std == 0.05);
  const seqpe::SeqPeOptions options = seqpe::seqpe_options(config);
  CHECK(options.pe.scalar_scale == 0.0);
  CHECK(options.pe.encoder.residual_dropout == 0.0);
  // The SeqPe built from it has α = 0.
  engine::Generator gen(1);
  const auto pe = seqpe::make_position_encoding(config, gen);
  CHECK(std::dynamic_pointer_cast<seqpe::SeqPe>(pe)->config().scalar_scale == 0.0);
}

TEST_CASE("model.json: a field both sections give with different values is refused, naming both values") {
  SUBCASE("a SeqPE option the run set") {
    json section = seqpe_model_section();
    section["position_encoding_options"]["pe_max_position"] = 2000;
    CHECK_THROWS_WITH_AS(seqpe::gpt_config_from_model_json(section, stated_fields(), "run/best.model.json"),
                         "run/best.model.json: the 'model' section has position_encoding_options.pe_max_position = "
                         "2000 but the 'config' section gives 1000; edit both sections to the same value",
                         engine::Error);
  }
  SUBCASE("a size") {
    json section = seqpe_model_section();
    section["layers"] = 2;
    CHECK_THROWS_WITH_AS(seqpe::gpt_config_from_model_json(section, stated_fields(), "run/best.model.json"),
                         doctest::Contains("has layers = 2 but the 'config' section gives 1"), engine::Error);
  }
  SUBCASE("a dropout rate") {
    json stated = stated_fields();
    stated["residual_dropout"] = 0.0;
    CHECK_THROWS_WITH_AS(seqpe::gpt_config_from_model_json(seqpe_model_section(), stated, "m.json"),
                         doctest::Contains("has residual_dropout = 0.1 but the 'config' section gives 0.0"),
                         engine::Error);
  }
}

TEST_CASE("model.json: a bad value in the model section names the file and the section") {
  json section = seqpe_model_section();
  section["position_encoding_options"]["scalar_scale"] = "big";
  CHECK_THROWS_WITH_AS(seqpe::gpt_config_from_model_json(section, stated_fields(), "run/best.model.json"),
                       doctest::Contains("run/best.model.json, section 'model': SeqPE options field 'scalar_scale'"),
                       engine::Error);
}
