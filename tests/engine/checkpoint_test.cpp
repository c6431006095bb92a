// Tests of checkpoints (engine/checkpoint.h): round trips of tensors, step, generators and extra
// state; errors.
#include "engine/checkpoint.h"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "engine/module.h"
#include "engine/rng.h"
#include "engine/safetensors.h"
#include "file_test_util.h"

using engine::Dtype;
using engine::Tensor;
using engine::TrainingState;
using file_test_util::ScratchDir;

namespace {

// A two-tensor model, enough to check that a checkpoint's model part loads into a Module.
class TinyModel : public engine::Module {
 public:
  explicit TinyModel(engine::Generator& gen) {
    register_parameter("proj.weight", Tensor::randn({3, 2}, gen));
    register_buffer("positions", Tensor::arange(4));
  }
};

TrainingState example_state() {
  TrainingState state;
  engine::Generator gen(11);
  state.model["h.0.attn.weight"] = Tensor::randn({4, 3}, gen).transpose(0, 1);  // non-contiguous
  state.model["h.0.attn.bias"] = Tensor::randn({3}, gen, Dtype::f64);
  state.model["wpe.positions"] = Tensor::from_indices({0, 1, 2, 3}, {4}, Dtype::i32);
  state.optimizer["h.0.attn.weight.exp_avg"] = Tensor::randn({3, 4}, gen);
  state.optimizer["h.0.attn.weight.exp_avg_sq"] = Tensor::rand({3, 4}, gen);
  state.optimizer["step"] = Tensor::from_indices({1234}, {});
  state.step = 1234;
  state.generators["init"] = {42, 1000};
  state.generators["dropout"] = {std::numeric_limits<uint64_t>::max(), uint64_t(1) << 40};
  state.extra = {{"data_position", {{"epoch", 2}, {"index", 12345}}},
                 {"config", {{"n_layer", 2}, {"n_embd", 64}, {"pe", "rope"}}}};
  return state;
}

// Rewrites a checkpoint with one metadata field changed (or removed when `value` is empty).
void rewrite_metadata(const std::string& path, const std::string& field, const std::string& value) {
  engine::SafetensorsFile file = engine::load_safetensors(path);
  if (value.empty()) {
    file.metadata.erase(field);
  } else {
    file.metadata[field] = value;
  }
  engine::save_safetensors(path, file.tensors, file.metadata);
}

void check_same_tensors(const std::map<std::string, Tensor>& loaded, const std::map<std::string, Tensor>& saved) {
  REQUIRE(loaded.size() == saved.size());
  for (const auto& [name, tensor] : saved) {
    CAPTURE(name);
    REQUIRE(loaded.count(name) == 1);
    CHECK(loaded.at(name).dtype() == tensor.dtype());
    CHECK(loaded.at(name).shape() == tensor.shape());
    if (engine::is_floating(tensor.dtype())) {
      CHECK(loaded.at(name).to_vector<double>() == tensor.to_vector<double>());
    } else {
      CHECK(loaded.at(name).to_vector<int64_t>() == tensor.to_vector<int64_t>());
    }
  }
}

}  // namespace

TEST_CASE("checkpoint round trip keeps tensors, step, generator states and extra state") {
  ScratchDir dir;
  const std::string path = dir.file("step_1234.ckpt.safetensors");
  const TrainingState saved = example_state();
  engine::save_checkpoint(path, saved);

  const TrainingState loaded = engine::load_checkpoint(path);
  check_same_tensors(loaded.model, saved.model);
  check_same_tensors(loaded.optimizer, saved.optimizer);
  CHECK(loaded.step == 1234);
  CHECK(loaded.generators == saved.generators);
  CHECK(loaded.extra == saved.extra);
  CHECK(dir.entries() == std::vector<std::string>{"step_1234.ckpt.safetensors"});

  // It is a plain safetensors file underneath, readable by standard tools.
  const engine::SafetensorsFile raw = engine::load_safetensors(path);
  CHECK(raw.tensors.count("model.h.0.attn.weight") == 1);
  CHECK(raw.tensors.count("optim.step") == 1);
  CHECK(raw.metadata.at("format") == "seqpe-engine-checkpoint");
  CHECK(raw.metadata.at("format_version") == "1");
  CHECK(raw.metadata.at("step") == "1234");
}

TEST_CASE("a checkpoint restores a module's weights and a generator's stream") {
  ScratchDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  engine::Generator init(5), data(9);
  TinyModel model(init);
  data.randint(100);  // some progress through the data order before the save
  TrainingState state;
  state.model = model.state_dict();
  state.generators["data"] = {data.seed(), data.offset()};
  engine::save_checkpoint(path, state);
  std::vector<uint64_t> continued;
  for (int i = 0; i < 5; ++i) continued.push_back(data.randint(1000));

  const TrainingState loaded = engine::load_checkpoint(path);
  engine::Generator other_init(6);
  TinyModel resumed(other_init);
  resumed.load_state_dict(loaded.model);
  check_same_tensors(resumed.state_dict(), model.state_dict());
  engine::Generator resumed_data;
  resumed_data.set_state(loaded.generators.at("data").first, loaded.generators.at("data").second);
  std::vector<uint64_t> replayed;
  for (int i = 0; i < 5; ++i) replayed.push_back(resumed_data.randint(1000));
  CHECK(replayed == continued);

  std::map<std::string, Tensor> wrong = loaded.model;
  wrong["proj.weight"] = Tensor::ones({2, 3});
  CHECK_THROWS_WITH_AS(resumed.load_state_dict(wrong),
                       doctest::Contains("tensor 'proj.weight' has shape [2, 3] but the model expects [3, 2]"),
                       engine::Error);
}

TEST_CASE("export_weights writes a checkpoint's model as bf16 weights that load into an f32 model; "
          "load_model_weights reads either file") {
  ScratchDir dir;
  const std::string checkpoint = dir.file("ckpt.safetensors"), weights = dir.file("model.safetensors");
  engine::Generator init(5);
  TinyModel model(init);
  TrainingState state = example_state();
  state.model = model.state_dict();
  engine::save_checkpoint(checkpoint, state);
  engine::export_weights(checkpoint, weights);

  const engine::SafetensorsFile exported = engine::load_safetensors(weights, engine::Bf16Loading::keep_bf16);
  CHECK(exported.metadata == engine::SafetensorsMetadata{{"format", "pt"}, {"step", "1234"}});
  REQUIRE(exported.tensors.size() == 2);  // the model only: no optimizer state
  const Tensor weight = exported.tensors.at("proj.weight");
  CHECK(weight.dtype() == Dtype::bf16);
  CHECK(exported.tensors.at("positions").dtype() == Dtype::i64);  // integers as they are
  const Tensor master = model.state_dict().at("proj.weight");
  CHECK(weight.to_vector<double>() == master.to(Dtype::bf16).to_vector<double>());
  // Rounded, not truncated: every weight lies within half a bf16 ulp (2^-9 relative) of its master.
  const std::vector<double> rounded = weight.to_vector<double>(), exact = master.to_vector<double>();
  for (size_t i = 0; i < exact.size(); ++i) CHECK(std::fabs(rounded[i] - exact[i]) <= std::fabs(exact[i]) * 0x1p-9);

  engine::Generator other_init(6);
  TinyModel inference(other_init);
  inference.load_state_dict(exported.tensors);  // widened into the f32 parameters
  CHECK(inference.state_dict().at("proj.weight").dtype() == Dtype::f32);
  CHECK(inference.state_dict().at("proj.weight").to_vector<double>() == rounded);
  CHECK_THROWS_WITH_AS(engine::export_weights(checkpoint, weights, Dtype::i32),
                       doctest::Contains("weight dtype must be floating, got i32"), engine::Error);

  // The model part of either file, the export's widened to f32; other files refused naming the field.
  const engine::ModelWeights from_checkpoint = engine::load_model_weights(checkpoint);
  const engine::ModelWeights from_export = engine::load_model_weights(weights);
  CHECK(from_checkpoint.step == 1234);
  CHECK(from_export.step == 1234);
  REQUIRE(from_checkpoint.tensors.size() == 2);  // no optimizer state
  REQUIRE(from_export.tensors.size() == 2);
  CHECK(from_checkpoint.tensors.at("proj.weight").to_vector<double>() == master.to_vector<double>());
  const Tensor widened = from_export.tensors.at("proj.weight");
  CHECK(widened.dtype() == Dtype::f32);  // bf16 widened on reading
  CHECK(widened.to_vector<double>() == master.to(Dtype::bf16).to_vector<double>());

  const std::string plain = dir.file("plain.safetensors");
  engine::save_safetensors(plain, {{"w", Tensor::ones({2})}}, {{"format", "np"}});
  CHECK_THROWS_WITH_AS(engine::load_model_weights(plain),
                       doctest::Contains((plain + ": metadata field \"format\" is \"np\"").c_str()), engine::Error);
}

TEST_CASE("load_checkpoint names the missing or malformed field") {
  ScratchDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  const auto fresh = [&] { engine::save_checkpoint(path, example_state()); };

  fresh();
  rewrite_metadata(path, "format_version", "2");
  CHECK_THROWS_WITH_AS(engine::load_checkpoint(path),
                       doctest::Contains((path + ": checkpoint format version 2, this build reads 1").c_str()), engine::Error);

  for (const char* field : {"format_version", "step", "generators", "extra"}) {
    CAPTURE(field);
    fresh();
    rewrite_metadata(path, field, "");
    CHECK_THROWS_WITH_AS(engine::load_checkpoint(path),
                         doctest::Contains((std::string("checkpoint lacks metadata field \"") + field + "\"").c_str()),
                         engine::Error);
  }

  fresh();
  rewrite_metadata(path, "step", "12x");
  CHECK_THROWS_WITH_AS(engine::load_checkpoint(path),
                       doctest::Contains("metadata field \"step\" should be an integer, got \"12x\""), engine::Error);
  fresh();
  rewrite_metadata(path, "generators", R"({"init": {"seed": 1}})");
  CHECK_THROWS_WITH_AS(engine::load_checkpoint(path),
                       doctest::Contains("generator \"init\" lacks an unsigned integer \"offset\""), engine::Error);
  fresh();
  rewrite_metadata(path, "extra", "{not json");
  CHECK_THROWS_WITH_AS(engine::load_checkpoint(path), doctest::Contains("metadata field \"extra\": not valid JSON"),
                       engine::Error);
  fresh();
  rewrite_metadata(path, "format", "something-else");
  CHECK_THROWS_WITH_AS(engine::load_checkpoint(path), doctest::Contains("\"format\" is \"something-else\""),
                       engine::Error);

  // A weights-only file is not a training checkpoint.
  engine::save_safetensors(path, {{"wte.weight", Tensor::ones({2, 2})}}, {{"format", "pt"}});
  CHECK_THROWS_WITH_AS(engine::load_checkpoint(path), doctest::Contains("\"format\" is \"pt\""), engine::Error);
  engine::save_safetensors(path, {{"wte.weight", Tensor::ones({2, 2})}});
  CHECK_THROWS_WITH_AS(engine::load_checkpoint(path), doctest::Contains("lacks metadata field \"format\""),
                       engine::Error);

  // A tensor outside the model and optimizer namespaces.
  fresh();
  engine::SafetensorsFile file = engine::load_safetensors(path);
  file.tensors["stray"] = Tensor::ones({1});
  engine::save_safetensors(path, file.tensors, file.metadata);
  CHECK_THROWS_WITH_AS(engine::load_checkpoint(path), doctest::Contains("tensor 'stray' belongs to neither"),
                       engine::Error);
}

TEST_CASE("read_checkpoint_step reads the step from the header and validates the file as load_checkpoint does") {
  ScratchDir dir;
  const std::string path = dir.file("step_1234.ckpt.safetensors");
  engine::save_checkpoint(path, example_state());
  CHECK(engine::read_checkpoint_step(path) == 1234);
  CHECK(engine::read_safetensors_metadata(path) == engine::load_safetensors(path).metadata);

  // A file cut short inside its data (a writer killed before the rename could not leave one, a
  // copy could) is refused, though its header is whole.
  const std::string bytes = file_test_util::read_bytes(path);
  file_test_util::write_bytes(path, bytes.substr(0, bytes.size() - 4));
  CHECK_THROWS_WITH_AS(engine::read_checkpoint_step(path), doctest::Contains("truncated"), engine::Error);

  engine::save_safetensors(path, {{"wte.weight", Tensor::ones({2, 2})}}, {{"format", "pt"}});
  CHECK_THROWS_WITH_AS(engine::read_checkpoint_step(path), doctest::Contains("\"format\" is \"pt\""), engine::Error);
  engine::save_checkpoint(path, example_state());
  rewrite_metadata(path, "step", "12x");
  CHECK_THROWS_WITH_AS(engine::read_checkpoint_step(path),
                       doctest::Contains("metadata field \"step\" should be an integer, got \"12x\""), engine::Error);
}

TEST_CASE("save_checkpoint refuses extra state that is not a JSON object") {
  ScratchDir dir;
  TrainingState state = example_state();
  state.extra = nlohmann::json::array({1, 2});
  CHECK_THROWS_WITH_AS(engine::save_checkpoint(dir.file("ckpt.safetensors"), state),
                       doctest::Contains("extra must be a JSON object, got array"), engine::Error);
  CHECK(dir.entries().empty());
}
