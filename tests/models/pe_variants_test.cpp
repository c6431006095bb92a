// Every position encoding inside a whole model: a tiny f64 GPT (ape, sin, rope, alibi, nope) and
// a tiny f64 ViT (ape, sin, rope, rope2d, rope_mixed) pass a gradcheck with respect to *every*
// parameter, and f32 versions memorise one batch. Models come from JSON configs through the PE
// factory, as an application builds them.
#include <doctest/doctest.h>

#include "engine/gradcheck.h"
#include "engine/optim/adamw.h"
#include "models/model_config.h"
#include "ops/cross_entropy.h"

using engine::Dtype;
using engine::Tensor;
using nlohmann::json;

namespace {

const std::vector<std::string> gpt_pes = {"ape", "sin", "rope", "alibi", "nope"};
const std::vector<std::string> vit_pes = {"ape", "sin", "rope", "rope2d", "rope_mixed"};

json pe_options(const std::string& pe) {
  return pe == "sin" ? json{{"max_position", 63}} : json::object();
}

// Vocabulary 7, width 8, 2 heads (D = 4), one layer, MLP ratio 2: ~700 parameters in f64.
models::GptConfig gradcheck_gpt(const std::string& pe) {
  return models::gpt_config_from_json({{"vocab_size", 7}, {"context", 6}, {"layers", 1}, {"channels", 8},
                                       {"heads", 2}, {"mlp_ratio", 2}, {"embedding_dropout", 0.0},
                                       {"residual_dropout", 0.0}, {"attention_dropout", 0.0}, {"init_std", 0.5},
                                       {"position_encoding", pe}, {"position_encoding_options", pe_options(pe)},
                                       {"dtype", "f64"}});
}

// 8×8 grey images, 4×4 patches (a 2×2 grid + class token), width 8, 2 heads (D = 4), one block.
models::VitConfig gradcheck_vit(const std::string& pe) {
  return models::vit_config_from_json({{"image_size", 8}, {"patch", 4}, {"in_channels", 1}, {"width", 8},
                                       {"depth", 1}, {"heads", 2}, {"mlp_ratio", 2}, {"num_classes", 3},
                                       {"init_std", 0.5}, {"position_encoding", pe},
                                       {"position_encoding_options", pe_options(pe)}, {"dtype", "f64"}});
}

std::vector<Tensor> all_parameters(const engine::Module& model) {
  std::vector<Tensor> params;
  for (const auto& [name, param] : model.named_parameters()) params.push_back(param);
  return params;
}

// Trains on one fixed batch until the loss falls below 1% of the first (at most `max_steps`).
template <typename LossFn>
std::pair<double, double> memorise(engine::Module& model, LossFn loss_fn, int max_steps) {
  engine::optim::AdamW optimizer({engine::optim::ParamGroup{model.named_parameters(), 1e-2, 0.0}});
  double first = 0, last = 0;
  for (int step = 0; step < max_steps && (step == 0 || last >= 0.01 * first); ++step) {
    optimizer.zero_grad();
    Tensor loss = loss_fn();
    loss.backward();
    optimizer.step();
    if (step == 0) first = loss.item();
    last = loss.item();
  }
  return {first, last};
}

}  // namespace

TEST_CASE("a tiny f64 GPT passes gradcheck w.r.t. every parameter with each PE") {
  for (const std::string& pe : gpt_pes) {
    CAPTURE(pe);
    engine::Generator gen(31);
    const models::GptConfig config = gradcheck_gpt(pe);
    models::Gpt model(config, gen, models::make_position_encoding(config, gen));
    const Tensor tokens = Tensor::from_indices({1, 5, 2, 2, 6, 0, 3, 4, 4, 1}, {2, 5});
    auto result = engine::gradcheck([&](const std::vector<Tensor>&) { return model.forward(tokens, gen); },
                                    all_parameters(model));
    CHECK_MESSAGE(result.ok, result.message);
  }
}

TEST_CASE("a tiny f64 ViT passes gradcheck w.r.t. every parameter and the image with each PE") {
  for (const std::string& pe : vit_pes) {
    CAPTURE(pe);
    engine::Generator gen(32);
    const models::VitConfig config = gradcheck_vit(pe);
    models::Vit model(config, gen, models::make_position_encoding(config, gen));
    std::vector<Tensor> inputs = all_parameters(model);
    if (pe == "rope_mixed") CHECK(inputs.back().shape() == engine::Shape{1, 2, 2, 2});  // learned frequencies
    inputs.push_back(Tensor::randn({2, 1, 8, 8}, gen, Dtype::f64).requires_grad_());
    auto result = engine::gradcheck([&](const std::vector<Tensor>& in) { return model.forward(in.back(), gen); },
                                    inputs);
    CHECK_MESSAGE(result.ok, result.message);
  }
}

TEST_CASE("a tiny GPT memorises one batch with each PE") {
  for (const std::string& pe : gpt_pes) {
    CAPTURE(pe);
    engine::Generator gen(33);
    const models::GptConfig config = models::gpt_config_from_json(
        {{"vocab_size", 17}, {"context", 12}, {"layers", 1}, {"channels", 32}, {"heads", 4},
         {"embedding_dropout", 0.0}, {"residual_dropout", 0.0}, {"attention_dropout", 0.0}, {"position_encoding", pe},
         {"position_encoding_options", pe_options(pe)}});
    models::Gpt model(config, gen, models::make_position_encoding(config, gen));
    std::vector<int64_t> ids(2 * 13);
    for (auto& id : ids) id = int64_t(gen.randint(17));
    const Tensor data = Tensor::from_indices(ids, {2, 13});
    const Tensor inputs = data.narrow(1, 0, 12).contiguous(), targets = data.narrow(1, 1, 12).contiguous();
    auto [first, last] = memorise(
        model, [&] { return ops::cross_entropy(model.forward(inputs, gen), targets); }, 400);
    MESSAGE(pe << ": loss " << first << " -> " << last);
    CHECK(last < 0.01 * first);
  }
}

TEST_CASE("a tiny ViT memorises one batch with each PE") {
  for (const std::string& pe : vit_pes) {
    CAPTURE(pe);
    engine::Generator gen(34);
    const models::VitConfig config = models::vit_config_from_json(
        {{"image_size", 16}, {"patch", 4}, {"in_channels", 1}, {"width", 32}, {"depth", 1}, {"heads", 4},
         {"num_classes", 10}, {"position_encoding", pe}, {"position_encoding_options", pe_options(pe)}});
    models::Vit model(config, gen, models::make_position_encoding(config, gen));
    const Tensor images = Tensor::randn({8, 1, 16, 16}, gen);
    std::vector<int64_t> labels(8);
    for (auto& y : labels) y = int64_t(gen.randint(10));
    const Tensor targets = Tensor::from_indices(labels, {8});
    auto [first, last] = memorise(model, [&] { return ops::cross_entropy(model.forward(images, gen), targets); }, 300);
    MESSAGE(pe << ": loss " << first << " -> " << last);
    CHECK(last < 0.01 * first);
  }
}
