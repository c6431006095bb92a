// Model configs as JSON (models/model_config.h) and the position-encoding factory
// (models/pe/factory.h): round trips, defaults, and errors that name the field and the value.
#include <doctest/doctest.h>

#include "data/temp_dir.h"
#include "models/json_config.h"
#include "models/model_config.h"

using nlohmann::json;

TEST_CASE("GPT config: JSON round trip, defaults for absent fields") {
  json j = {{"vocab_size", 97}, {"context", 32}, {"layers", 2}, {"channels", 64}, {"heads", 4},
            {"position_encoding", "rope"}, {"position_encoding_options", {{"base", 500.0}}}, {"dtype", "f64"}};
  models::GptConfig c = models::gpt_config_from_json(j);
  CHECK(c.vocab_size == 97);
  CHECK(c.heads == 4);
  CHECK(c.mlp_ratio == 4);  // default
  CHECK(c.residual_dropout == 0.1);
  CHECK(c.attention_dropout == 0.1);  // GPT-2's attn_pdrop
  CHECK(c.dtype == engine::Dtype::f64);
  CHECK(c.position_encoding_options.at("base") == 500.0);
  CHECK(models::gpt_config_from_json(models::gpt_config_to_json(c)).channels == 64);
  CHECK(models::gpt_config_to_json(models::gpt_config_from_json(models::gpt_config_to_json(c))) ==
        models::gpt_config_to_json(c));
}

TEST_CASE("GPT config errors name the field and the bad value") {
  auto error_of = [](const json& j) {
    try {
      models::gpt_config_from_json(j);
    } catch (const engine::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error_of({{"channels", 768}, {"heads", 10}}).find("GPT config field 'heads' must divide 'channels' "
                                                          "(768 % 10 != 0)") != std::string::npos);
  CHECK(error_of({{"layers", 0}}).find("field 'layers' must be >= 1, got 0") != std::string::npos);
  CHECK(error_of({{"layers", "12"}}).find("field 'layers' must be an integer, got \"12\"") != std::string::npos);
  CHECK(error_of({{"residual_dropout", 1.5}}).find("field 'residual_dropout' must be in [0, 1), got 1.5") !=
        std::string::npos);
  CHECK(error_of({{"attention_dropout", -0.1}}).find("field 'attention_dropout' must be in [0, 1), got -0.1") !=
        std::string::npos);
  CHECK(error_of({{"layer_norm_eps", 0}}).find("field 'layer_norm_eps' must be a number > 0, got 0") !=
        std::string::npos);
  CHECK(error_of({{"position_encoding", "rope2d"}}).find("field 'position_encoding' must be one of") !=
        std::string::npos);
  CHECK(error_of({{"dtype", "f16"}}).find("field 'dtype' must be one of \"f32\", \"f64\", got \"f16\"") !=
        std::string::npos);
  CHECK(error_of({{"chanels", 64}}).find("GPT config has an unknown field 'chanels'") != std::string::npos);
  CHECK(error_of(json::array()).find("GPT config must be a JSON object") != std::string::npos);
}

TEST_CASE("ViT config: round trip and errors") {
  json j = {{"image_size", 32}, {"patch", 4}, {"width", 48}, {"heads", 4}, {"position_encoding", "rope_mixed"}};
  models::VitConfig c = models::vit_config_from_json(j);
  CHECK(c.width == 48);
  CHECK(c.layer_norm_eps == 1e-6);
  CHECK(c.attention_dropout == 0.0);  // timm's attn_drop_rate
  CHECK(models::vit_config_from_json({{"attention_dropout", 0.25}}).attention_dropout == 0.25);
  CHECK(models::vit_config_to_json(models::vit_config_from_json(models::vit_config_to_json(c))) ==
        models::vit_config_to_json(c));
  CHECK_THROWS_WITH_AS(models::vit_config_from_json({{"image_size", 30}, {"patch", 4}}),
                       doctest::Contains("ViT config field 'patch' must divide 'image_size' (30 % 4 != 0)"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(models::vit_config_from_json({{"width", 48}, {"heads", 5}}),
                       doctest::Contains("field 'heads' must divide 'width' (48 % 5 != 0)"), engine::Error);
  CHECK_THROWS_WITH_AS(models::vit_config_from_json({{"position_encoding", "alibi"}}),
                       doctest::Contains("'position_encoding' must be one of"), engine::Error);
}

TEST_CASE("the factory builds each baseline PE by name; options are validated") {
  engine::Generator gen(3);
  const models::pe::PeDims dims{32, 4, 2, engine::Dtype::f32};
  for (const std::string name : {"sin", "rope", "rope2d", "rope_mixed", "alibi"}) {
    auto pe = models::pe::make_position_encoding(name, json::object(), dims, gen);
    REQUIRE(pe);
    CHECK(pe->name() == name);
  }
  CHECK(models::pe::make_position_encoding("ape", json::object(), dims, gen) == nullptr);
  CHECK(models::pe::make_position_encoding("nope", json::object(), dims, gen) == nullptr);
  auto sin = models::pe::make_position_encoding("sin", {{"max_position", 99}}, dims, gen);
  CHECK(sin->state_dict().at("table").size(0) == 100);
  CHECK_THROWS_WITH_AS(models::pe::make_position_encoding("rope", {{"base", -1}}, dims, gen),
                       doctest::Contains("position encoding 'rope' options field 'base' must be a number > 0, got -1"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(models::pe::make_position_encoding("alibi", {{"scaled", true}}, dims, gen),
                       doctest::Contains("unknown field 'scaled'"), engine::Error);
  CHECK_THROWS_WITH_AS(models::pe::make_position_encoding("rope2d", json::object(), {24, 4, 1, engine::Dtype::f32}, gen),
                       doctest::Contains("head dim ('channels' / 'heads' = 6) that is a multiple of 4"), engine::Error);
  CHECK_THROWS_WITH_AS(models::pe::make_position_encoding("seqpe", json::object(), dims, gen),
                       doctest::Contains("built by seqpe/"), engine::Error);
  CHECK_THROWS_WITH_AS(models::pe::make_position_encoding("xpos", json::object(), dims, gen),
                       doctest::Contains("unknown position encoding 'xpos'"), engine::Error);
}

TEST_CASE("models refuse a PE that does not match the config") {
  engine::Generator gen(4);
  models::GptConfig config = models::gpt_config_from_json(
      {{"vocab_size", 11}, {"context", 8}, {"layers", 1}, {"channels", 16}, {"heads", 2},
       {"position_encoding", "rope"}});
  CHECK_THROWS_WITH_AS(models::Gpt(config, gen), doctest::Contains("but no position encoding was passed"),
                       engine::Error);
  auto alibi = models::pe::make_position_encoding("alibi", json::object(), {16, 2, 1, engine::Dtype::f32}, gen);
  CHECK_THROWS_WITH_AS(models::Gpt(config, gen, alibi),
                       doctest::Contains("is \"rope\" but the position encoding passed is 'alibi'"), engine::Error);
  models::Gpt model(config, gen, models::make_position_encoding(config, gen));
  config.heads = 3;
  CHECK_THROWS_WITH_AS(models::Gpt(config, gen, models::pe::make_position_encoding("rope", json::object(),
                                                                               {16, 2, 1, engine::Dtype::f32}, gen)),
                       doctest::Contains("'heads' must divide 'channels' (16 % 3 != 0)"), engine::Error);
}

TEST_CASE("a config saved beside the weights reads back") {
  TempDir dir;
  const std::string weights = (dir / "model.safetensors").string();
  CHECK(models::config_path_beside(weights) == (dir / "model.json").string());
  models::VitConfig config;
  config.position_encoding = "rope2d";
  config.position_encoding_options = {{"base", 100.0}};
  models::save_config_beside(weights, models::vit_config_to_json(config));
  models::VitConfig loaded = models::vit_config_from_json(models::load_config_beside(weights));
  CHECK(loaded.position_encoding == "rope2d");
  CHECK(loaded.position_encoding_options.at("base") == 100.0);
  CHECK_THROWS_WITH_AS(models::read_json_file((dir / "missing.json").string()), doctest::Contains("cannot open"),
                       engine::Error);
  write_text_file(dir / "bad.json", "{\"a\": ");
  CHECK_THROWS_WITH_AS(models::read_json_file((dir / "bad.json").string()), doctest::Contains("bad.json: not valid JSON"),
                       engine::Error);
}

TEST_CASE("save_gpt / load_gpt and save_vit / load_vit rebuild the model from the config beside the weights") {
  TempDir dir;
  engine::Generator gen(5);
  const models::GptConfig gpt_config = models::gpt_config_from_json(
      {{"vocab_size", 13}, {"context", 8}, {"layers", 1}, {"channels", 16}, {"heads", 2}, {"position_encoding", "sin"},
       {"position_encoding_options", {{"max_position", 31}}}});
  models::Gpt gpt(gpt_config, gen, models::make_position_encoding(gpt_config, gen));
  gpt.eval();
  const std::string gpt_path = (dir / "gpt.safetensors").string();
  models::save_gpt(gpt, gpt_path);
  engine::Generator other(77);
  auto gpt_loaded = models::load_gpt(gpt_path, other);
  gpt_loaded->eval();
  CHECK(gpt_loaded->config().position_encoding == "sin");
  const engine::Tensor tokens = engine::Tensor::from_indices({3, 1, 4, 1, 5}, {1, 5});
  CHECK(gpt_loaded->forward(tokens, gen).to_vector<float>() == gpt.forward(tokens, gen).to_vector<float>());

  const models::VitConfig vit_config = models::vit_config_from_json(
      {{"image_size", 8}, {"patch", 4}, {"in_channels", 1}, {"width", 16}, {"depth", 1}, {"heads", 2},
       {"num_classes", 3}, {"position_encoding", "rope_mixed"}});
  models::Vit vit(vit_config, gen, models::make_position_encoding(vit_config, gen));
  vit.eval();
  const std::string vit_path = (dir / "vit.safetensors").string();
  models::save_vit(vit, vit_path);
  auto vit_loaded = models::load_vit(vit_path, other);
  vit_loaded->eval();
  const engine::Tensor images = engine::Tensor::randn({2, 1, 8, 8}, gen);
  CHECK(vit_loaded->forward(images, gen).to_vector<float>() == vit.forward(images, gen).to_vector<float>());
}
