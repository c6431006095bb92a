// Our GPT against an independent implementation: tests/fixtures/gpt2_tiny.safetensors, written by
// tests/fixtures/make_gpt2_fixture.py with plain PyTorch (f32, CPU), holds a tiny GPT-2's weights in
// Hugging Face names and layout, one batch, its logits, loss and gradients, and the losses of
// 5 AdamW steps. Tolerances: f32 forward ~1e-5 relative; gradients 1e-4 (longer chains of f32
// rounding, in a different reduction order than torch's).
//
//   B = batch (2), T = time (16), V = vocabulary (97)
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>

#include "data/temp_dir.h"
#include "engine/optim/adamw.h"
#include "engine/safetensors.h"
#include "models/gpt.h"
#include "models/gpt2_checkpoint.h"
#include "models/reference_fixture.h"
#include "ops/cross_entropy.h"

using engine::Tensor;

namespace {

const std::string fixture_path = std::string(ENGINE_TEST_FIXTURES) + "/gpt2_tiny.safetensors";

models::GptConfig tiny_gpt2_config() {
  models::GptConfig config;
  config.vocab_size = 97;
  config.context = 32;
  config.layers = 2;
  config.channels = 64;
  config.heads = 4;
  config.embedding_dropout = config.residual_dropout = config.attention_dropout = 0.0;
  return config;
}

// The fixture's loss for (B, T) tokens: mean cross-entropy over all B·T positions.
Tensor lm_loss(models::Gpt& model, const Tensor& inputs, const Tensor& targets, engine::Generator& gen) {
  Tensor logits = model.forward(inputs, gen);
  const int64_t V = logits.size(2);
  return ops::cross_entropy(logits.reshape({-1, V}), targets.reshape({-1}));
}

}  // namespace

TEST_CASE("GPT-2 matches a PyTorch reference: logits, loss, every gradient, 5 AdamW steps") {
  const auto fixture = engine::load_safetensors(fixture_path).tensors;
  engine::Generator gen(7);  // the init is overwritten; dropout is off
  models::Gpt model(tiny_gpt2_config(), gen);
  models::load_gpt2_weights(model, fixture_weights(fixture));
  const Tensor& inputs = fixture.at("input_ids");
  const Tensor& targets = fixture.at("targets");

  Tensor logits = model.forward(inputs, gen);
  const double logits_error = relative_error(logits, fixture.at("logits"));
  MESSAGE("logits relative error " << logits_error);
  CHECK(logits_error < 1e-5);
  Tensor loss = ops::cross_entropy(logits.reshape({-1, logits.size(2)}), targets.reshape({-1}));
  const double reference_loss = fixture.at("loss").item();
  const double loss_error = std::abs(loss.item() - reference_loss) / std::abs(reference_loss);
  MESSAGE("loss " << loss.item() << " vs " << reference_loss << ", relative error " << loss_error);
  CHECK(loss_error < 1e-5);

  loss.backward();
  double worst_gradient = 0;
  for (const auto& [name, param] : model.named_parameters()) {
    CAPTURE(name);
    REQUIRE(param.grad().defined());
    Tensor grad = models::is_gpt2_conv1d_weight(name) ? param.grad().transpose(0, 1) : param.grad();
    const double error = relative_error(grad, fixture.at("grad." + name));
    worst_gradient = std::max(worst_gradient, error);
    CHECK(error < 1e-4);
  }
  MESSAGE("worst gradient relative error " << worst_gradient << " over " << model.named_parameters().size()
                                           << " parameters");
}

TEST_CASE("GPT-2 AdamW trajectory matches the PyTorch reference for 5 steps") {
  const auto fixture = engine::load_safetensors(fixture_path).tensors;
  engine::Generator gen(7);
  models::Gpt model(tiny_gpt2_config(), gen);
  models::load_gpt2_weights(model, fixture_weights(fixture));
  engine::optim::AdamW optimizer({engine::optim::ParamGroup{model.named_parameters(), 1e-3, 0.0}});
  const auto reference = fixture.at("adamw_losses").to_vector<float>();
  REQUIRE(reference.size() == 5);
  for (size_t step = 0; step < reference.size(); ++step) {
    optimizer.zero_grad();
    Tensor loss = lm_loss(model, fixture.at("input_ids"), fixture.at("targets"), gen);
    loss.backward();
    optimizer.step();
    const double error = std::abs(loss.item() - double(reference[step])) / std::abs(double(reference[step]));
    MESSAGE("step " << step << " loss " << loss.item() << " vs " << reference[step] << ", relative error " << error);
    CHECK(error < 1e-5);
  }
}

TEST_CASE("GPT-2 weights survive export to Hugging Face layout and back") {
  const auto fixture = engine::load_safetensors(fixture_path).tensors;
  engine::Generator gen(7);
  models::Gpt model(tiny_gpt2_config(), gen);
  models::load_gpt2_weights(model, fixture_weights(fixture));
  const auto exported = models::export_gpt2_weights(model);
  CHECK(exported.size() == model.named_parameters().size());
  for (const auto& [name, tensor] : exported) {
    CAPTURE(name);
    CHECK(relative_error(tensor, fixture.at(name)) == 0.0);
  }
  // The GPT2LMHeadModel flavour: prefixed names, the tied head and the mask buffers are accepted.
  std::map<std::string, Tensor> prefixed;
  for (const auto& [name, tensor] : exported) prefixed.emplace("transformer." + name, tensor);
  prefixed.emplace("lm_head.weight", exported.at("wte.weight"));
  prefixed.emplace("transformer.h.0.attn.bias", Tensor::ones({1, 1, 32, 32}));
  prefixed.emplace("transformer.h.0.attn.masked_bias", Tensor::full({}, -1e4));
  models::Gpt reloaded(tiny_gpt2_config(), gen);
  models::load_gpt2_weights(reloaded, prefixed);
  const auto state = reloaded.state_dict();
  CHECK(relative_error(state.at("h.1.mlp.c_fc.weight").transpose(0, 1), fixture.at("h.1.mlp.c_fc.weight")) == 0.0);

  // Through a file: save_gpt2_safetensors writes HF names and layout, load reads them back.
  TempDir dir;
  const std::string path = (dir / "gpt2.safetensors").string();
  models::save_gpt2_safetensors(model, path);
  const auto saved = engine::load_safetensors(path);
  CHECK(saved.metadata.at("format") == "pt");
  CHECK(relative_error(saved.tensors.at("h.0.attn.c_attn.weight"), fixture.at("h.0.attn.c_attn.weight")) == 0.0);
  models::Gpt from_file(tiny_gpt2_config(), gen);
  models::load_gpt2_safetensors(from_file, path);
  for (const auto& [name, tensor] : from_file.state_dict()) {
    CAPTURE(name);
    CHECK(relative_error(tensor, model.state_dict().at(name)) == 0.0);
  }
}

TEST_CASE("GPT-2 loading names the tensor at fault") {
  const auto fixture = fixture_weights(engine::load_safetensors(fixture_path).tensors);
  engine::Generator gen(7);
  models::Gpt model(tiny_gpt2_config(), gen);

  auto untransposed = fixture;
  untransposed["h.0.attn.c_attn.weight"] = fixture.at("h.0.attn.c_attn.weight").transpose(0, 1).contiguous();
  CHECK_THROWS_WITH_AS(models::load_gpt2_weights(model, untransposed),
                       doctest::Contains("'h.0.attn.c_attn.weight' has shape [192, 64] in the checkpoint, "
                                         "expected [64, 192]"),
                       engine::Error);
  auto missing = fixture;
  missing.erase("ln_f.bias");
  CHECK_THROWS_WITH_AS(models::load_gpt2_weights(model, missing), doctest::Contains("'ln_f.bias' is missing"),
                       engine::Error);
  auto extra = fixture;
  extra.emplace("h.2.ln_1.weight", Tensor::ones({64}));
  CHECK_THROWS_WITH_AS(models::load_gpt2_weights(model, extra), doctest::Contains("unexpected tensor 'h.2.ln_1.weight'"),
                       engine::Error);
}
