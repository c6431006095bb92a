// SeqPE options as JSON (seqpe/seqpe_options.h) and SeqPE models as files (seqpe/seqpe_models.h):
// the defaults are the reference's values (docs/method.md) one by one, the JSON round-trips, bad values and unknown
// fields are errors naming the field, and a saved and reloaded SeqPE GPT gives the same logits.
#include <doctest/doctest.h>

#include <string>

#include "data/temp_dir.h"
#include "engine/error.h"
#include "engine/rng.h"
#include "models/model_config.h"
#include "seqpe/seqpe_models.h"
#include "seqpe/seqpe_options.h"

using nlohmann::json;

namespace {

// GPT-2 small as docs/method.md#language-modelling trains it (context 512).
models::GptConfig gpt2_small(const json& options = json::object()) {
  models::GptConfig c;
  c.vocab_size = 50257;
  c.context = 512;
  c.layers = 12;
  c.channels = 768;
  c.heads = 12;
  c.position_encoding = "seqpe";
  c.position_encoding_options = options;
  return c;
}

// ViT-S/16 at 224 (docs/method.md#image-classification): a 14 x 14 grid.
models::VitConfig vit_s(const json& options = json::object()) {
  models::VitConfig c;
  c.image_size = 224;
  c.patch = 16;
  c.in_channels = 3;
  c.width = 384;
  c.depth = 12;
  c.heads = 6;
  c.num_classes = 1000;
  c.position_encoding = "seqpe";
  c.position_encoding_options = options;
  return c;
}

std::string gpt_error(const json& options, models::GptConfig config = gpt2_small()) {
  config.position_encoding_options = options;
  try {
    seqpe::seqpe_options(config);
  } catch (const engine::Error& e) {
    return e.what();
  }
  return "no error";
}

std::string vit_error(const json& options) {
  try {
    seqpe::seqpe_options(vit_s(options));
  } catch (const engine::Error& e) {
    return e.what();
  }
  return "no error";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("SeqPE options: a GPT's defaults are the reference's text values (docs/method.md)") {
  const seqpe::SeqPeOptions o = seqpe::seqpe_options(gpt2_small());
  const seqpe::SeqPeConfig& pe = o.pe;
  // docs/method.md#one-dimensional-positions: PE_MAX_POSITION 20000, base 10, 5 digits, left padding, 1-D.
  CHECK(pe.pe_max_position == 20000);
  CHECK(pe.encoder.base == 10);
  CHECK(pe.encoder.max_digits == 5);
  CHECK(pe.encoder.dims == 1);
  CHECK(pe.padding == seqpe::Padding::left);
  // docs/method.md#the-position-encoder: D_pe 768, 12 heads of 64, 2 layers, causal, resid dropout 0.1, LN eps 1e-5, temperature 1,
  // init N(0, 0.02); D_out = the model width (multi-head attn_*).
  CHECK(pe.encoder.channels == 768);
  CHECK(pe.encoder.heads == 12);
  CHECK(pe.encoder.layers == 2);
  CHECK(pe.encoder.causal);
  CHECK(pe.encoder.residual_dropout == 0.1);
  CHECK(pe.encoder.layer_norm_eps == 1e-5);
  CHECK(pe.encoder.temperature == 1.0);
  CHECK(pe.encoder.init_std == 0.02);
  CHECK(pe.encoder.out_features == 768);
  CHECK_FALSE(pe.truncated_normal_init);
  // docs/method.md#released-settings: attn_scalar + single W_qk + multi-head, α = 1; no class token.
  CHECK(pe.apply == seqpe::ApplyMethod::attn_scalar);
  CHECK(pe.qk_projection == seqpe::QkProjection::single);
  CHECK(pe.multi_head);
  CHECK(pe.scalar_scale == 1.0);
  CHECK(pe.init_std == 0.02);
  CHECK_FALSE(pe.class_token);
  CHECK(pe.model_width == 768);
  CHECK(pe.model_heads == 12);
  CHECK(pe.model_layers == 12);
  // docs/method.md#contrastive-objective: λ_ct 0.1, B_ct 16, K 32, hard negatives 0.4 / distributional 0.6, ratio 0.25, window 256.
  CHECK(pe.contrastive_weight == 0.1);
  CHECK(o.contrastive.batch_size == 16);
  CHECK(o.contrastive.num_candidates == 32);
  CHECK(o.contrastive.random_only_probability == 0.0);
  CHECK(o.contrastive.hard_negative_probability == 0.4);
  CHECK(o.contrastive.distributional_probability == 0.6);
  CHECK(o.contrastive.hard_negative_ratio == 0.25);
  CHECK(o.contrastive.distributional_range == 256);
  CHECK(o.contrastive.dims == 1);
  CHECK(o.contrastive.pe_max_position == 20000);
  // docs/method.md#distillation-objective: λ_tr 0.1, B_tr 16, n_t 32, 12 heads, skipped on shifted steps, block L = 512.
  CHECK(pe.transfer_weight == 0.1);
  CHECK(o.transfer.batch_size == 16);
  CHECK(o.transfer.num_indices == 32);
  CHECK(pe.transfer_heads == 12);
  CHECK_FALSE(pe.transfer_on_shifted_steps);
  CHECK(o.transfer.block_shape == engine::Shape{512});
  // docs/method.md#random-shift: random shift on, rate 0.1, 320 blocks kept, P = 16, restart in [0, 32).
  CHECK(o.main_sampler.use_random_shift);
  CHECK(o.main_sampler.shift_rate == 0.1);
  CHECK(o.main_sampler.shift_downsample == 320);
  CHECK(o.main_sampler.blocks_per_shifted_step == 16);
  CHECK(o.main_sampler.restart_offset_range == 32);
  CHECK(o.main_sampler.block_shape == engine::Shape{512});
  // docs/method.md#the-position-encoder, docs/method.md#language-modelling: SeqPE's gradients clipped apart at 5.
  CHECK(o.clip == 5.0);
}

TEST_CASE("SeqPE options: a ViT's defaults are the reference's image values (docs/method.md)") {
  const seqpe::SeqPeOptions o = seqpe::seqpe_options(vit_s());
  const seqpe::SeqPeConfig& pe = o.pe;
  CHECK(pe.pe_max_position == 10000);  // a 100 x 100 grid
  CHECK(pe.encoder.max_digits == 2);
  CHECK(pe.encoder.dims == 2);
  CHECK(pe.encoder.channels == 384);
  CHECK(pe.encoder.heads == 6);
  CHECK(pe.encoder.layers == 2);
  CHECK(pe.encoder.causal);
  CHECK(pe.encoder.residual_dropout == 0.1);
  CHECK(pe.encoder.out_features == 384);
  CHECK(pe.truncated_normal_init);
  CHECK(pe.apply == seqpe::ApplyMethod::attn_mul);
  CHECK(pe.qk_projection == seqpe::QkProjection::multi);
  CHECK(pe.multi_head);
  CHECK(pe.class_token);
  CHECK(pe.model_layers == 12);
  CHECK(pe.contrastive_weight == 0.1);
  CHECK(o.contrastive.batch_size == 32);
  CHECK(o.contrastive.num_candidates == 64);
  CHECK(o.contrastive.random_only_probability == 0.5);
  CHECK(o.contrastive.hard_negative_probability == 0.3);
  CHECK(o.contrastive.distributional_probability == 0.2);
  CHECK(o.contrastive.hard_negative_ratio == 0.2);
  CHECK(o.contrastive.distributional_range == 196);  // a 17 x 17 square with K = 64
  CHECK(o.contrastive.dims == 2);
  CHECK(pe.transfer_weight == 0.1);
  CHECK(o.transfer.batch_size == 32);
  CHECK(o.transfer.num_indices == 64);
  CHECK(pe.transfer_heads == 6);
  CHECK(o.transfer.block_shape == engine::Shape{14, 14});
  CHECK(o.main_sampler.shift_rate == 0.1);
  CHECK(o.main_sampler.shift_downsample == 320);
  CHECK(o.main_sampler.blocks_per_shifted_step == 32);
  CHECK(o.main_sampler.block_shape == engine::Shape{14, 14});
  CHECK(o.clip == 5.0);
}

TEST_CASE("SeqPE options: every field round-trips through JSON") {
  const json options = {
      {"pe_max_position", 4096}, {"base", 8}, {"padding", "right"}, {"apply", "attn_add"},
      {"qk_projection", "multi"}, {"multi_head", false}, {"scalar_scale", 0.5}, {"init_std", 0.01},
      {"truncated_normal_init", true}, {"clip", 2.5},
      {"encoder",
       {{"channels", 128}, {"heads", 2}, {"layers", 3}, {"causal", false}, {"residual_dropout", 0.2},
        {"layer_norm_eps", 1e-6}, {"temperature", 2.0}, {"init_std", 0.03}}},
      {"contrastive",
       {{"weight", 0.2}, {"batch_size", 4}, {"num_candidates", 8}, {"random_only_probability", 0.2},
        {"hard_negative_probability", 0.3}, {"distributional_probability", 0.5}, {"hard_negative_ratio", 0.5},
        {"distributional_range", 64}, {"batches_per_epoch", 7}}},
      {"transfer",
       {{"weight", 0.3}, {"batch_size", 5}, {"num_indices", 9}, {"heads", 4}, {"on_shifted_steps", true},
        {"batches_per_epoch", 3}}},
      {"random_shift",
       {{"enabled", false}, {"rate", 0.25}, {"downsample", 100}, {"blocks", 4}, {"restart_offset_range", 8}}}};
  models::GptConfig gpt = gpt2_small(options);
  gpt.context = 64;
  const seqpe::SeqPeOptions o = seqpe::seqpe_options(gpt);
  CHECK(seqpe::seqpe_options_to_json(o) == options);
  CHECK(o.pe.encoder.max_digits == 4);  // 4095 in base 8 is 7777
  CHECK(o.pe.encoder.out_features == 64);  // one head-dim vector shared by the heads
  CHECK(o.contrastive.base == 8);
  // Defaults written out in full read back the same, for both settings.
  const json text = seqpe::seqpe_options_to_json(seqpe::seqpe_options(gpt2_small()));
  CHECK(seqpe::seqpe_options_to_json(seqpe::seqpe_options(gpt2_small(text))) == text);
  const json image = seqpe::seqpe_options_to_json(seqpe::seqpe_options(vit_s()));
  CHECK(seqpe::seqpe_options_to_json(seqpe::seqpe_options(vit_s(image))) == image);
  CHECK(seqpe::with_full_seqpe_options(gpt2_small()).position_encoding_options == text);
  // Through the model config's JSON (model.json): position_encoding_options carries them as they are.
  const models::GptConfig full = seqpe::with_full_seqpe_options(gpt);
  CHECK(models::gpt_config_from_json(models::gpt_config_to_json(full)).position_encoding_options == options);
}

TEST_CASE("SeqPE options: bad values and unknown fields are errors naming the field") {
  CHECK(contains(gpt_error({{"encoderr", json::object()}}), "SeqPE options has an unknown field 'encoderr'"));
  CHECK(contains(gpt_error({{"encoder", {{"layer", 1}}}}), "SeqPE options.encoder has an unknown field 'layer'"));
  CHECK(contains(gpt_error({{"encoder", {{"layers", 0}}}}),
                 "SeqPE options.encoder field 'layers' must be >= 1, got 0"));
  CHECK(contains(gpt_error({{"encoder", {{"heads", 5}}}}), "SeqPE options.encoder field 'heads' must divide"));
  CHECK(contains(gpt_error({{"encoder", {{"residual_dropout", 1.0}}}}), "field 'residual_dropout' must be in [0, 1)"));
  CHECK(contains(gpt_error({{"encoder", {{"temperature", 0}}}}), "field 'temperature' must be a number > 0"));
  CHECK(contains(gpt_error({{"apply", "attn_div"}}), "SeqPE options field 'apply' must be one of \"input_add\""));
  CHECK(contains(gpt_error({{"padding", "middle"}}), "field 'padding' must be one of \"left\", \"right\""));
  CHECK(contains(gpt_error({{"multi_head", 1}}), "field 'multi_head' must be true or false, got 1"));
  CHECK(contains(gpt_error({{"pe_max_position", 100}}), "field 'pe_max_position' gives positions [0, 100)"));
  CHECK(contains(gpt_error({{"contrastive", {{"hard_negative_probability", 1.5}}}}),
                 "SeqPE options.contrastive field 'hard_negative_probability' must be in [0, 1], got 1.5"));
  CHECK(contains(gpt_error({{"contrastive", {{"hard_negative_probability", 0.5}}}}), "sum to 1.1"));
  CHECK(contains(gpt_error({{"contrastive", {{"weight", -0.1}}}}), "field 'weight' must be in [0, "));
  CHECK(contains(gpt_error({{"transfer", {{"num_indices", 513}}}}),
                 "SeqPE options.transfer field 'num_indices' must not exceed the 512 cells"));
  CHECK(contains(gpt_error({{"transfer", {{"heads", 5}}}}), "SeqPE options.transfer field 'heads' must divide D_out"));
  CHECK(contains(gpt_error({{"random_shift", {{"rate", 2}}}}), "SeqPE options.random_shift field 'rate'"));
  CHECK(contains(gpt_error(json::array()), "SeqPE options must be a JSON object"));
  CHECK(contains(vit_error({{"pe_max_position", 1000}}), "field 'pe_max_position' must be a square"));
  CHECK(contains(vit_error({{"qk_projection", "none"}}), "field 'qk_projection' \"none\" is not available"));
  models::GptConfig rope = gpt2_small();
  rope.position_encoding = "rope";
  CHECK_THROWS_WITH_AS(seqpe::seqpe_options(rope), doctest::Contains("SeqPE options need \"seqpe\""), engine::Error);
}

TEST_CASE("a SeqPE GPT saved with its model.json and reloaded gives identical logits") {
  models::GptConfig config;
  config.vocab_size = 40;
  config.context = 12;
  config.layers = 2;
  config.channels = 16;
  config.heads = 2;
  config.position_encoding = "seqpe";
  config.position_encoding_options = {{"pe_max_position", 1000}, {"encoder", {{"layers", 1}}}};
  config = seqpe::with_full_seqpe_options(config);
  engine::Generator init_gen(3);
  models::Gpt model(config, init_gen, seqpe::make_position_encoding(config, init_gen));
  TempDir dir;
  const std::string path = (dir / "model.safetensors").string();
  models::save_gpt(model, path);
  CHECK(models::load_config_beside(path).at("position_encoding_options") == config.position_encoding_options);

  engine::Generator other_gen(99);  // the weights come from the file, not the generator
  const std::unique_ptr<models::Gpt> loaded = seqpe::load_gpt(path, other_gen);
  CHECK(models::gpt_config_to_json(loaded->config()) == models::gpt_config_to_json(config));
  model.eval();
  loaded->eval();
  engine::Generator dropout(0);
  const engine::Tensor tokens = engine::Tensor::from_indices({1, 5, 7, 3, 9, 2, 0, 39, 4, 4, 8, 6}, {2, 6});
  const std::vector<float> expected = model.forward(tokens, dropout).to_vector<float>();
  const std::vector<float> got = loaded->forward(tokens, dropout).to_vector<float>();
  CHECK(got == expected);
  // models/ alone cannot rebuild it: SeqPE lives above it.
  CHECK_THROWS_WITH_AS(models::load_gpt(path, other_gen), doctest::Contains("built by seqpe/"), engine::Error);
}
