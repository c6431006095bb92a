// Tests of ModuleList and ModuleDict (engine/module_list.h, engine/module_dict.h): the dotted names
// their children's tensors get in the parent, in order; parameters, state dicts and loading,
// train/eval and to_ reaching every child; typed access; errors naming the index or name at fault.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/module.h"
#include "engine/module_dict.h"
#include "engine/module_list.h"
#include "engine/rng.h"

using engine::Tensor;

namespace {

// A layer with a weight of `width` values and a buffer.
class Leaf : public engine::Module {
 public:
  Leaf(int64_t width, engine::Generator& gen) : width(width) {
    register_parameter("weight", Tensor::randn({width}, gen));
    register_buffer("steps", Tensor::zeros({1}));
  }
  int64_t width;
};

// "blocks" a list of two leaves, "mlp" a dict of two, a parameter of its own after them.
class Parent : public engine::Module {
 public:
  explicit Parent(engine::Generator& gen) {
    blocks = register_module("blocks", std::make_shared<engine::ModuleList<Leaf>>());
    for (int64_t width : {2, 3}) blocks->append(std::make_shared<Leaf>(width, gen));
    mlp = register_module("mlp", std::make_shared<engine::ModuleDict<Leaf>>());
    c_fc = mlp->insert("c_fc", std::make_shared<Leaf>(4, gen));
    mlp->insert("c_proj", std::make_shared<Leaf>(5, gen));
    register_parameter("scale", Tensor::ones({1}));
  }
  std::shared_ptr<engine::ModuleList<Leaf>> blocks;
  std::shared_ptr<engine::ModuleDict<Leaf>> mlp;
  std::shared_ptr<Leaf> c_fc;
};

std::vector<std::string> names_of(const std::vector<std::pair<std::string, Tensor>>& named) {
  std::vector<std::string> names;
  for (const auto& [name, tensor] : named) names.push_back(name);
  return names;
}

}  // namespace

TEST_CASE("ModuleList and ModuleDict name their children's tensors in the parent, in order") {
  engine::Generator gen(1);
  Parent parent(gen);
  // The parent's own tensors first, then its children in registration order (engine/module.h).
  CHECK(names_of(parent.named_parameters()) == std::vector<std::string>{"scale", "blocks.0.weight", "blocks.1.weight",
                                                                          "mlp.c_fc.weight", "mlp.c_proj.weight"});
  CHECK(names_of(parent.named_buffers()) ==
        std::vector<std::string>{"blocks.0.steps", "blocks.1.steps", "mlp.c_fc.steps", "mlp.c_proj.steps"});
  CHECK(parent.parameter_count() == 1 + 2 + 3 + 4 + 5);
  CHECK(parent.state_dict().size() == 9);
}

TEST_CASE("ModuleList and ModuleDict give typed access and iterate in order") {
  engine::Generator gen(2);
  Parent parent(gen);
  CHECK(parent.blocks->size() == 2);
  CHECK(!parent.blocks->empty());
  CHECK(parent.blocks->at(1).width == 3);
  std::vector<int64_t> widths;
  for (const auto& leaf : *parent.blocks) widths.push_back(leaf->width);
  CHECK(widths == std::vector<int64_t>{2, 3});
  CHECK(&parent.mlp->at("c_fc") == parent.c_fc.get());
  CHECK(parent.mlp->contains("c_proj"));
  CHECK(!parent.mlp->contains("c_attn"));
  std::vector<std::string> names;
  for (const auto& [name, leaf] : *parent.mlp) names.push_back(name + ":" + std::to_string(leaf->width));
  CHECK(names == std::vector<std::string>{"c_fc:4", "c_proj:5"});
}

TEST_CASE("a state dict of containers loads into a fresh model; train, eval and to_ reach the children") {
  engine::Generator gen(3);
  Parent source(gen), target(gen);
  CHECK(target.blocks->at(1).named_parameters()[0].second.to_vector<float>() !=
        source.blocks->at(1).named_parameters()[0].second.to_vector<float>());
  target.load_state_dict(source.state_dict());
  for (const auto& [name, tensor] : source.state_dict())
    CHECK_MESSAGE(target.state_dict().at(name).to_vector<float>() == tensor.to_vector<float>(), name);

  target.eval();
  CHECK(!target.blocks->at(0).is_training());
  CHECK(!target.mlp->at("c_proj").is_training());
  target.train();
  CHECK(target.mlp->at("c_fc").is_training());
  target.to_(engine::Device::cpu());
  CHECK(target.parameters().size() == 5);
  for (const Tensor& parameter : target.parameters()) CHECK(parameter.requires_grad());
}

TEST_CASE("ModuleList and ModuleDict errors name the index or name at fault") {
  engine::Generator gen(4);
  Parent parent(gen);
  CHECK_THROWS_WITH_AS(parent.blocks->at(2), "ModuleList: index 2 is out of range for 2 entries", engine::Error);
  CHECK_THROWS_WITH_AS(parent.mlp->at("c_attn"), "ModuleDict: no child named 'c_attn' (it holds: c_fc, c_proj)",
                       engine::Error);
  CHECK_THROWS_WITH_AS(parent.mlp->insert("c_fc", std::make_shared<Leaf>(1, gen)),
                       "ModuleDict::insert: name 'c_fc' is already taken", engine::Error);
  CHECK_THROWS_WITH_AS(parent.mlp->insert("a.b", std::make_shared<Leaf>(1, gen)),
                       "ModuleDict::insert: name 'a.b' must be non-empty and contain no '.'", engine::Error);
  CHECK_THROWS_WITH_AS(parent.blocks->append(std::shared_ptr<Leaf>()), "ModuleList::append: entry 2 is null",
                       engine::Error);
  // A refused child leaves the container as it was.
  CHECK(parent.blocks->size() == 2);
  CHECK(parent.mlp->size() == 2);
  CHECK(parent.state_dict().size() == 9);
}
