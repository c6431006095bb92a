// The ViT classifier (models/vit.h): shapes at the training and at a larger resolution with every
// image PE, gradients in f64, and memorising one batch.
#include <doctest/doctest.h>

#include <map>

#include "engine/gradcheck.h"
#include "engine/optim/adamw.h"
#include "models/pe/rope.h"
#include "models/pe/sinusoidal.h"
#include "models/vit.h"
#include "ops/cross_entropy.h"

using engine::Dtype;
using engine::Tensor;

namespace {

models::VitConfig small_config(const std::string& pe) {
  models::VitConfig config;
  config.image_size = 28;
  config.patch = 4;
  config.in_channels = 1;
  config.width = 32;
  config.depth = 2;
  config.heads = 4;
  config.num_classes = 10;
  config.position_encoding = pe;
  return config;
}

std::shared_ptr<models::PositionEncoding> make_pe(const models::VitConfig& config, engine::Generator& gen,
                                                  Dtype dtype = Dtype::f32) {
  const int64_t head_dim = config.width / config.heads;
  const std::string& name = config.position_encoding;
  if (name == "sin") return std::make_shared<models::pe::Sinusoidal>(1000, config.width, 10000.0, 1.0, dtype);
  if (name == "rope") return std::make_shared<models::pe::Rope>(head_dim, 10000.0, dtype);
  if (name == "rope2d") return std::make_shared<models::pe::Rope2d>(head_dim, 100.0, dtype);
  if (name == "rope_mixed")
    return std::make_shared<models::pe::RopeMixed>(config.depth, config.heads, head_dim, 10.0, gen, dtype);
  return nullptr;
}

}  // namespace

TEST_CASE("unfold_patches flattens each patch as (Cin, p, p) in raster order") {
  // (1, 2, 2, 4) image, patch 2: 1×2 grid of patches.
  std::vector<double> values(16);
  for (size_t i = 0; i < values.size(); ++i) values[i] = double(i);
  Tensor images = Tensor::from_vector(values, {1, 2, 2, 4}, Dtype::f64);
  Tensor patches = models::unfold_patches(images, 2);
  CHECK(patches.shape() == engine::Shape{1, 2, 8});
  // patch (0, 1): channel 0 rows 0-1 cols 2-3, then channel 1.
  CHECK(patches.select(1, 1).contiguous().to_vector<double>() ==
        std::vector<double>{2, 3, 6, 7, 10, 11, 14, 15});
  CHECK_THROWS_WITH_AS(models::unfold_patches(Tensor::zeros({1, 1, 6, 8}), 4), doctest::Contains("multiples"),
                       engine::Error);
}

TEST_CASE("ViT logits have shape (B, K) at 28x28 and at 56x56 with every PE") {
  for (const std::string name : {"ape", "sin", "rope", "rope2d", "rope_mixed", "nope"}) {
    CAPTURE(name);
    engine::Generator gen(7);
    auto config = small_config(name);
    models::Vit model(config, gen, make_pe(config, gen));
    model.eval();
    Tensor small = Tensor::randn({3, 1, 28, 28}, gen), large = Tensor::randn({1, 1, 56, 56}, gen);
    Tensor logits = model.forward(small, gen);
    CHECK(logits.shape() == engine::Shape{3, 10});
    Tensor logits_large = model.forward(large, gen);
    CHECK(logits_large.shape() == engine::Shape{1, 10});
    for (double v : logits_large.to_vector<float>()) CHECK(std::isfinite(v));
  }
}

TEST_CASE("ViT with APE: the training grid uses pos_embed, a larger grid its interpolation") {
  engine::Generator gen(8);
  models::Vit model(small_config("ape"), gen);
  auto params = model.named_parameters();
  std::map<std::string, Tensor> by_name(params.begin(), params.end());
  REQUIRE(by_name.count("pos_embed"));
  CHECK(by_name["pos_embed"].shape() == engine::Shape{1, 1 + 49, 32});
  CHECK(by_name.count("patch_embed.proj.weight"));
  CHECK(by_name.count("blocks.1.attn.c_attn.weight"));
  // Truncated normal 0.02: within ±2 absolute (timm's bounds), std near 0.02.
  double sum_sq = 0;
  auto w = by_name["blocks.0.attn.c_attn.weight"].to_vector<float>();
  for (float v : w) sum_sq += double(v) * double(v);
  CHECK(std::sqrt(sum_sq / double(w.size())) == doctest::Approx(0.02).epsilon(0.1));
  Tensor images = Tensor::randn({1, 1, 32, 32}, gen);
  CHECK_THROWS_WITH_AS(model.forward(images, gen), doctest::Contains("evaluation only"), engine::Error);
  model.eval();
  CHECK(model.forward(images, gen).shape() == engine::Shape{1, 10});
  CHECK_THROWS_WITH_AS(model.forward(Tensor::randn({1, 1, 30, 28}, gen), gen), doctest::Contains("multiples"),
                       engine::Error);
}

TEST_CASE("a tiny f64 ViT passes gradcheck w.r.t. the image and one parameter") {
  for (const std::string name : {"ape", "rope2d", "rope_mixed"}) {
    CAPTURE(name);
    engine::Generator gen(9);
    models::VitConfig config;
    config.image_size = 8;
    config.patch = 4;
    config.in_channels = 1;
    config.width = 8;
    config.depth = 1;
    config.heads = 2;
    config.mlp_ratio = 2;
    config.num_classes = 3;
    config.position_encoding = name;
    config.init_std = 0.5;  // large weights so that every path carries a visible gradient
    config.dtype = Dtype::f64;
    models::Vit model(config, gen, make_pe(config, gen, Dtype::f64));
    Tensor images = Tensor::randn({1, 1, 8, 8}, gen, Dtype::f64).requires_grad_();
    Tensor cls;
    for (auto& [param_name, param] : model.named_parameters())
      if (param_name == "cls_token") cls = param;
    REQUIRE(cls.defined());
    auto result = engine::gradcheck([&](const std::vector<Tensor>& in) { return model.forward(in[0], gen); },
                                    {images, cls});
    CHECK_MESSAGE(result.ok, result.message);
  }
}

TEST_CASE("a tiny ViT memorises one batch of random images") {
  engine::Generator gen(10);
  models::VitConfig config = small_config("ape");
  config.image_size = 16;
  config.depth = 1;
  models::Vit model(config, gen);
  Tensor images = Tensor::randn({8, 1, 16, 16}, gen);
  std::vector<int64_t> labels(8);
  for (auto& y : labels) y = int64_t(gen.randint(10));
  Tensor targets = Tensor::from_indices(labels, {8});
  engine::optim::AdamW optimizer({engine::optim::ParamGroup{model.named_parameters(), 1e-2, 0.0}});
  double first = 0, last = 0;
  for (int step = 0; step < 200 && (step == 0 || last >= 0.01 * first); ++step) {
    optimizer.zero_grad();
    Tensor loss = ops::cross_entropy(model.forward(images, gen), targets);
    loss.backward();
    optimizer.step();
    if (step == 0) first = loss.item();
    last = loss.item();
  }
  MESSAGE("ViT loss " << first << " -> " << last);
  CHECK(last < 0.01 * first);
}
