// Import and export of timm-named ViT checkpoints (models/vit_timm_checkpoint.h) against a fixture
// written by an independent PyTorch model with timm's module names (tests/fixtures/make_vit_timm_fixture.py).
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "data/temp_dir.h"
#include "engine/autograd.h"
#include "engine/safetensors.h"
#include "models/reference_fixture.h"
#include "models/vit.h"
#include "models/vit_timm_checkpoint.h"

using engine::Tensor;

namespace {

std::map<std::string, Tensor> timm_fixture() {
  return engine::load_safetensors(std::string(ENGINE_TEST_FIXTURES) + "/vit_timm_tiny.safetensors").tensors;
}

// The fixture's weights: everything but the inputs and the reference logits.
std::map<std::string, Tensor> timm_weights(std::map<std::string, Tensor> fixture) {
  for (const char* data : {"images", "logits", "timm_logits"}) fixture.erase(data);
  return fixture;
}

models::VitConfig tiny_config(int64_t image_size = 16, int64_t patch = 4) {
  models::VitConfig config;
  config.image_size = image_size;
  config.patch = patch;
  config.in_channels = 3;
  config.width = 32;
  config.depth = 2;
  config.heads = 4;
  config.num_classes = 10;
  return config;
}

std::string load_error(models::Vit& model, const std::map<std::string, Tensor>& weights) {
  try {
    models::load_timm_vit_weights(model, weights);
  } catch (const engine::Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("timm ViT names map to ours") {
  CHECK(models::timm_vit_name("blocks.0.ln_1.weight") == "blocks.0.norm1.weight");
  CHECK(models::timm_vit_name("blocks.11.attn.c_attn.bias") == "blocks.11.attn.qkv.bias");
  CHECK(models::timm_vit_name("blocks.3.attn.c_proj.weight") == "blocks.3.attn.proj.weight");
  CHECK(models::timm_vit_name("blocks.3.mlp.c_fc.weight") == "blocks.3.mlp.fc1.weight");
  CHECK(models::timm_vit_name("blocks.3.mlp.c_proj.bias") == "blocks.3.mlp.fc2.bias");
  CHECK(models::timm_vit_name("blocks.2.ln_2.bias") == "blocks.2.norm2.bias");
  for (const char* same : {"patch_embed.proj.weight", "cls_token", "pos_embed", "norm.weight", "head.bias"})
    CHECK(models::timm_vit_name(same) == same);
}

TEST_CASE("a timm-named ViT checkpoint loads and reproduces the reference logits") {
  const auto fixture = timm_fixture();
  engine::Generator gen(3);
  models::Vit model(tiny_config(), gen);
  model.eval();
  models::load_timm_vit_weights(model, timm_weights(fixture));
  engine::NoGradGuard no_grad;
  const Tensor logits = model.forward(fixture.at("images"), gen);
  const double error = relative_error(logits, fixture.at("logits"));
  // timm itself uses the exact erf GELU, the engine the tanh approximation: the logits differ by the
  // gap between the two (measured here, not hidden).
  const double timm_gap = relative_error(logits, fixture.at("timm_logits"));
  MESSAGE("relative error vs the tanh-GELU reference " << error << ", vs timm's erf GELU " << timm_gap);
  CHECK(error < 1e-5);
  CHECK(timm_gap < 2e-3);

  // Export gives back the file's tensors: names, timm layouts and values.
  const auto exported = models::export_timm_vit_weights(model);
  const auto weights = timm_weights(fixture);
  REQUIRE(exported.size() == weights.size());
  for (const auto& [name, tensor] : weights) {
    CAPTURE(name);
    REQUIRE(exported.count(name));
    CHECK(exported.at(name).shape() == tensor.shape());
    CHECK(exported.at(name).to_vector<float>() == tensor.to_vector<float>());
  }

  // A saved file loads into a fresh model with the same logits.
  TempDir dir;
  const std::string path = (dir / "vit_timm.safetensors").string();
  models::save_timm_vit_safetensors(model, path);
  engine::Generator other_gen(4);
  models::Vit reloaded(tiny_config(), other_gen);
  reloaded.eval();
  models::load_timm_vit_safetensors(reloaded, path);
  CHECK(reloaded.forward(fixture.at("images"), gen).to_vector<float>() == logits.to_vector<float>());
}

TEST_CASE("timm ViT import refuses mismatched checkpoints, naming tensor and shapes") {
  const auto weights = timm_weights(timm_fixture());
  engine::Generator gen(5);
  {
    models::Vit larger_grid(tiny_config(32, 4), gen);
    CHECK(load_error(larger_grid, weights).find("tensor 'pos_embed' has shape [1, 17, 32] in the checkpoint, "
                                                "expected [1, 65, 32]") != std::string::npos);
  }
  {
    models::Vit smaller_patch(tiny_config(16, 2), gen);
    CHECK(load_error(smaller_patch, weights).find("tensor 'patch_embed.proj.weight' has shape [32, 3, 4, 4] in "
                                                  "the checkpoint, expected [32, 3, 2, 2]") != std::string::npos);
  }
  models::Vit model(tiny_config(), gen);
  auto missing = weights;
  missing.erase("blocks.1.mlp.fc2.bias");
  CHECK(load_error(model, missing).find("tensor 'blocks.1.mlp.fc2.bias' (our 'blocks.1.mlp.c_proj.bias', shape "
                                        "[32]) is missing") != std::string::npos);
  auto extra = weights;
  extra.emplace("blocks.0.ls1.gamma", Tensor::ones({32}));
  CHECK(load_error(model, extra).find("unexpected tensor 'blocks.0.ls1.gamma' with shape [32]") != std::string::npos);
  auto wrong_qkv = weights;
  wrong_qkv["blocks.0.attn.qkv.weight"] = Tensor::zeros({96, 16});
  CHECK(load_error(model, wrong_qkv).find("tensor 'blocks.0.attn.qkv.weight' has shape [96, 16] in the checkpoint, "
                                          "expected [96, 32]") != std::string::npos);
}
