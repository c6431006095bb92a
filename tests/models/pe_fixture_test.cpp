// The RoPE and ALiBi GPT-2 variants and a tiny ViT against independent PyTorch implementations
// (tests/fixtures/make_pe_fixtures.py, f32, CPU): logits, loss, every gradient and 5 AdamW losses.
// Tolerances as the GPT-2 fixture: f32 forward ~1e-5 relative; gradients 1e-4 (longer chains of
// f32 rounding, in another reduction order than torch's).
//
//   B = batch, T = time, V = vocabulary, K = classes
#include <doctest/doctest.h>

#include <algorithm>
#include <functional>

#include "engine/optim/adamw.h"
#include "engine/safetensors.h"
#include "models/gpt2_checkpoint.h"
#include "models/model_config.h"
#include "models/reference_fixture.h"
#include "ops/cross_entropy.h"

using engine::Tensor;

namespace {

std::map<std::string, Tensor> load_fixture(const std::string& name) {
  return engine::load_safetensors(std::string(ENGINE_TEST_FIXTURES) + "/" + name).tensors;
}

// The fixture scripts' tiny GPT-2 (no dropout); ALiBi with the authors' bias-before-scale quirk.
models::GptConfig tiny_gpt2_config(const std::string& pe) {
  return models::gpt_config_from_json({{"vocab_size", 97},
                                       {"context", 32},
                                       {"layers", 2},
                                       {"channels", 64},
                                       {"heads", 4},
                                       {"embedding_dropout", 0.0},
                                       {"residual_dropout", 0.0},
                                       {"attention_dropout", 0.0},
                                       {"position_encoding", pe}});
}

models::VitConfig tiny_vit_config() {
  return models::vit_config_from_json({{"image_size", 16},
                                       {"patch", 4},
                                       {"in_channels", 3},
                                       {"width", 32},
                                       {"depth", 2},
                                       {"heads", 4},
                                       {"num_classes", 10}});
}

// Checks the loss of `loss_fn` (which runs the model's forward) against the fixture, then every
// gradient (`grad_of` maps a parameter to the fixture's layout), then 5 AdamW steps from the same
// weights (the caller reloads them through `reload`).
void check_against_fixture(engine::Module& model, const std::map<std::string, Tensor>& fixture,
                           const std::function<Tensor(Tensor*)>& loss_fn,
                           const std::function<Tensor(const std::string&, const Tensor&)>& grad_of,
                           const std::function<void()>& reload) {
  Tensor logits;
  Tensor loss = loss_fn(&logits);
  const double logits_error = relative_error(logits, fixture.at("logits"));
  const double reference_loss = fixture.at("loss").item();
  const double loss_error = std::abs(loss.item() - reference_loss) / std::abs(reference_loss);
  MESSAGE("logits relative error " << logits_error << ", loss " << loss.item() << " vs " << reference_loss);
  CHECK(logits_error < 1e-5);
  CHECK(loss_error < 1e-5);

  loss.backward();
  double worst_gradient = 0;
  for (const auto& [name, param] : model.named_parameters()) {
    CAPTURE(name);
    REQUIRE(param.grad().defined());
    const double error = relative_error(grad_of(name, param.grad()), fixture.at("grad." + name));
    worst_gradient = std::max(worst_gradient, error);
    CHECK(error < 1e-4);
  }
  MESSAGE("worst gradient relative error " << worst_gradient);

  reload();
  model.zero_grad();
  engine::optim::AdamW optimizer({engine::optim::ParamGroup{model.named_parameters(), 1e-3, 0.0}});
  const auto reference = fixture.at("adamw_losses").to_vector<float>();
  REQUIRE(reference.size() == 5);
  for (size_t step = 0; step < reference.size(); ++step) {
    optimizer.zero_grad();
    Tensor step_loss = loss_fn(nullptr);
    step_loss.backward();
    optimizer.step();
    const double error = std::abs(step_loss.item() - double(reference[step])) / std::abs(double(reference[step]));
    CAPTURE(step);
    CHECK(error < 1e-5);
  }
}

void check_gpt2_variant(const std::string& pe) {
  const auto fixture = load_fixture("gpt2_" + pe + "_tiny.safetensors");
  engine::Generator gen(7);  // the init is overwritten; dropout is off
  const models::GptConfig config = tiny_gpt2_config(pe);
  models::Gpt model(config, gen, models::make_position_encoding(config, gen));
  auto reload = [&] { models::load_gpt2_weights(model, fixture_weights(fixture)); };
  reload();
  check_against_fixture(
      model, fixture,
      [&](Tensor* logits_out) {
        Tensor logits = model.forward(fixture.at("input_ids"), gen);
        if (logits_out) *logits_out = logits;
        return ops::cross_entropy(logits.reshape({-1, logits.size(2)}), fixture.at("targets").reshape({-1}));
      },
      [](const std::string& name, const Tensor& grad) {
        return models::is_gpt2_conv1d_weight(name) ? grad.transpose(0, 1) : grad;
      },
      reload);
}

}  // namespace

TEST_CASE("GPT-2 with RoPE (adjacent pairs, base 10000) matches a PyTorch reference") { check_gpt2_variant("rope"); }

TEST_CASE("GPT-2 with ALiBi (slope·j before the 1/sqrt(D) scale) matches a PyTorch reference") {
  check_gpt2_variant("alibi");
}

TEST_CASE("a tiny ViT (APE) matches a PyTorch reference") {
  const auto fixture = load_fixture("vit_tiny.safetensors");
  engine::Generator gen(7);
  models::Vit model(tiny_vit_config(), gen);
  auto reload = [&] { model.load_state_dict(fixture_weights(fixture)); };
  reload();
  check_against_fixture(
      model, fixture,
      [&](Tensor* logits_out) {
        Tensor logits = model.forward(fixture.at("images"), gen);
        if (logits_out) *logits_out = logits;
        return ops::cross_entropy(logits, fixture.at("labels"));
      },
      [](const std::string&, const Tensor& grad) { return grad; }, reload);
}
